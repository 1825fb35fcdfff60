import { ReactNode } from 'react';
import Box from '@mui/material/Box';
import Tooltip from '@mui/material/Tooltip';
import { Anomaly } from '../../api';
import { anomalyText } from './format';

/** A value shown highlighted, with the baseline it departs from in a tooltip, when it is abnormal. */
export function AnomalyMark(props: {
  anomalies: Anomaly[];
  children: ReactNode;
}) {
  const { anomalies, children } = props;
  if (!anomalies.length) return <>{children}</>;
  return (
    <Tooltip title={anomalies.map(a => anomalyText(a)).join(' · ')}>
      <Box
        component="span"
        data-testid="anomaly"
        sx={{
          // Dark text on light amber: 4.5:1 and more (white on warning.light is not).
          bgcolor: '#ffe0b2',
          color: '#5d2c00',
          borderRadius: 1,
          px: 0.5,
          fontWeight: 'bold',
        }}
      >
        {children} ⚠
      </Box>
    </Tooltip>
  );
}
