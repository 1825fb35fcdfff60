export { ReprocessDialog } from './ReprocessDialog';
