import '@testing-library/jest-dom';
import { configure } from '@testing-library/react';

// findBy* waits 1 s by default: on a loaded 2-core machine a first render (a Backstage app
// with its APIs) can take longer, and a test then fails on time, not on content.
configure({ asyncUtilTimeout: 10000 });
