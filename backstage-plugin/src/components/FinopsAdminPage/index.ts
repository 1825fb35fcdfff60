export { FinopsAdminPage } from './FinopsAdminPage';
