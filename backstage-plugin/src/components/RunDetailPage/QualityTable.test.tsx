import { render, screen, within } from '@testing-library/react';
import type { BlockQuality } from '../../api';
import { QualityTable } from './QualityTable';

const quality = (
  period: string,
  deliveries: BlockQuality['deliveries'],
): BlockQuality => ({
  period,
  focusVersions: ['1.2'],
  files: 3,
  rowsRead: 10,
  rowsLoaded: 10,
  rejected: [],
  warnings: [],
  unassignedCost: [],
  unassignedRows: 0,
  gate: null,
  deliveries,
});

describe('QualityTable', () => {
  it("shows, per period, each source's delivery: id shortened (full in its title), files, size", () => {
    render(
      <QualityTable
        quality={[
          quality('2026-11', [
            {
              source: 'aws-payer',
              deliveryId: '"6f1d2c3b4a5e6f7a8b9c"',
              files: 2,
              bytes: 3 * 1024 * 1024,
            },
            { source: 'azure-ea', deliveryId: 'run-1', files: 1, bytes: 512 },
          ]),
          quality('2026-10', []),
        ]}
      />,
    );
    expect(screen.getByText('Deliveries')).toBeInTheDocument();
    const aws = screen.getByTestId('delivery-aws-payer');
    expect(within(aws).getByTitle('"6f1d2c3b4a5e6f7a8b9c"')).toHaveTextContent(
      '"6f1d2c3b4a5…',
    );
    expect(within(aws).getByTitle('3,145,728 bytes')).toHaveTextContent(
      '3.0 MiB',
    );
    expect(aws).toHaveTextContent('2 files');
    const azure = screen.getByTestId('delivery-azure-ea');
    expect(azure).toHaveTextContent('run-1');
    expect(azure).toHaveTextContent('1 file, 512 B');
  });

  it('has no deliveries column for the landing layout', () => {
    render(<QualityTable quality={[quality('2026-11', [])]} />);
    expect(screen.queryByText('Deliveries')).not.toBeInTheDocument();
  });
});
