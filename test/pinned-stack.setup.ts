/**
 * setupFiles of the `integ-pinned` jest project: the server suites run their Python (the server,
 * and the scikit-learn that trains their models) on the pinned stack. Set before any suite loads
 * scripts/processes.ts, which reads MODEL_SERVER_PYTHON once.
 */
import { ensurePinnedPython } from './helpers/pinned-stack';

process.env.MODEL_SERVER_PYTHON = ensurePinnedPython();
process.env.MODEL_SERVER_STACK = 'pinned';
