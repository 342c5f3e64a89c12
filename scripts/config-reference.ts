// Prints the configuration reference table (README "Configuration reference"): npm run -s config-reference
import { configReference } from '../src/config/reference.ts';
process.stdout.write(`${configReference()}\n`);
