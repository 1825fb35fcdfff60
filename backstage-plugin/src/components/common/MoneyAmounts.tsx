import Box from '@mui/material/Box';
import { CurrencyAmount } from '../../api';
import { exactMoney, formatMoney } from './format';

/**
 * Money (`[{currency, amount}]`): one line per currency in the API's order, rounded for reading
 * in the browser's locale; the exact amount the API sent, with its code, in each line's title.
 * Never a total: amounts in different currencies do not add up.
 */
export function MoneyAmounts(props: {
  amounts?: readonly CurrencyAmount[] | null;
}) {
  const { amounts } = props;
  if (!amounts || amounts.length === 0) {
    return <span data-testid="money">{formatMoney(amounts)}</span>;
  }
  return (
    <Box component="span" data-testid="money" display="inline-block">
      {amounts.map((item, i) => (
        <Box
          component="span"
          key={`${item.currency}-${i}`}
          display="block"
          whiteSpace="nowrap"
          title={exactMoney([item])}
        >
          {formatMoney([item])}
        </Box>
      ))}
    </Box>
  );
}
