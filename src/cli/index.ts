#!/usr/bin/env node
// mlgate CLI: hash-password | check-config | gen-key | revoke | sessions | owner
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { importAppsettings } from './appsettings.ts';
import { genCerts } from './gencerts.ts';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { hashPassword } from '../auth/index.ts';
import { ConfigError, loadConfig, productionProblems } from '../config/index.ts';
import { generatePrivateKeyPem, type SigningAlgorithm } from '../tokens/index.ts';
import { adminCommand, ADMIN_USAGE } from './admin-client.ts';

const EXAMPLE_CERTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'certs-example');

const USAGE = `usage: mlgate <command>
  hash-password            read a password from stdin, print its argon2id hash (auth.admin.passwordHash)
  check-config <file>      validate a config file (+ MLGATE_* env) as startup would; exit 2 listing every problem
  gen-key [ES256|RS256|EdDSA]  print a new PKCS#8 PEM signing key (tokens.signingKeys[].privateKeyFile)
  gen-certs <dir> [--edge-hosts h1,h2] [--node-hosts h1,h2] [--days 397] [--force]
                           a private CA + edge, node and gateway-client certificates (openssl)
  import-appsettings <appsettings.json> [--dir /etc/mlgate]
                           print an mlgate config (YAML) made from an ML Server web node's settings
${ADMIN_USAGE}`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function main(argv: string[]): Promise<number> {
  const [command, arg] = argv;
  switch (command) {
    case 'hash-password': {
      if (process.stdin.isTTY) process.stderr.write('password (then Enter, Ctrl-D): ');
      const password = await readStdin();
      if (password.trim() === '') {
        process.stderr.write('mlgate: refusing an empty password\n');
        return 2;
      }
      process.stdout.write(`${await hashPassword(password)}\n`);
      return 0;
    }
    case 'check-config': {
      if (!arg) break;
      try {
        const config = loadConfig({ file: arg, env: process.env });
        const problems = productionProblems(config, EXAMPLE_CERTS);
        if (problems.length > 0) throw new ConfigError(problems);
        process.stdout.write(`${arg}: ok (mode ${config.mode})\n`);
        return 0;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        process.stderr.write(`mlgate: ${err.message}\n`);
        return 2;
      }
    }
    case 'revoke':
    case 'sessions':
    case 'owner':
      return adminCommand(command, argv.slice(1), process.env);
    case 'gen-certs': {
      if (!arg || arg.startsWith('--')) break;
      const { values } = parseArgs({
        args: argv.slice(2),
        options: { 'edge-hosts': { type: 'string' }, 'node-hosts': { type: 'string' }, days: { type: 'string' }, force: { type: 'boolean' } },
        strict: true,
      });
      const hosts = (v: string | undefined) => (v ?? 'localhost,127.0.0.1').split(',').map((h) => h.trim()).filter(Boolean);
      const days = Number(values.days ?? 397);
      if (!Number.isInteger(days) || days < 1 || days > 3650) break;
      const made = genCerts({ dir: arg, edgeHosts: hosts(values['edge-hosts']), nodeHosts: hosts(values['node-hosts']), days, force: values.force === true });
      process.stdout.write(`${made.join('\n')}\nkeys (mode 600) beside them; keep ca.key offline once the nodes' certificates are signed\n`);
      return 0;
    }
    case 'import-appsettings': {
      if (!arg) break;
      const { values } = parseArgs({ args: argv.slice(2), options: { dir: { type: 'string' } }, strict: true });
      const { config, warnings } = importAppsettings(readFileSync(arg, 'utf8'), { ...(values.dir ? { dir: values.dir } : {}) });
      const header = [`# mlgate config imported from ${arg} by mlgate import-appsettings`, ...warnings.map((w) => `# TODO: ${w}`)];
      process.stdout.write(`${header.join('\n')}\n${stringifyYaml(config)}`);
      for (const w of warnings) process.stderr.write(`mlgate: ${w}\n`);
      return 0;
    }
    case 'gen-key': {
      const alg = (arg ?? 'ES256') as SigningAlgorithm;
      if (!['ES256', 'RS256', 'EdDSA'].includes(alg)) break;
      process.stdout.write(await generatePrivateKeyPem(alg));
      return 0;
    }
  }
  process.stderr.write(`${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`mlgate: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
