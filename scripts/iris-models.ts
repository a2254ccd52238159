import * as path from 'node:path';

/**
 * The trainer of the iris models that the server tests and `npm run bench:serve` use
 * (scripts/iris_models.py): `python3 iris_models.py forest|slow-forest|noop OUT.joblib`, or `test-set DIR`.
 */
export const IRIS_TRAINER = path.join(__dirname, 'iris_models.py');
