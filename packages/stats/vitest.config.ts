import { tallyProject } from '../../vitest.shared.js';

export default tallyProject('stats');
