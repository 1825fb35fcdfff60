export { SourcesPage } from './SourcesPage';
