export { FailuresPage } from './FailuresPage';
