export { BatchRunsPage } from './BatchRunsPage';
