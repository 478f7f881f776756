import { runCli } from '../helpers/testbed';
import { version } from '../../src/cli/main';

describe('certpilot CLI', () => {
  test('--version prints the package version', async () => {
    const res = await runCli(['--version']);
    expect(res).toEqual({ code: 0, stdout: `certpilot ${version()}\n`, stderr: '' });
  });

  test('--help lists the commands and exits 0', async () => {
    const res = await runCli(['--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^ {2}renew /m);
    expect(res.stdout).toMatch(/^ {2}config /m);
  });

  test('no command prints help and exits 2', async () => {
    expect((await runCli([])).code).toBe(2);
  });

  test.each([
    [['frobnicate'], /unknown command "frobnicate"/],
    [['renew', '--bogus'], /Unknown option '--bogus'/],
    [['renew', '--log-level', 'loud'], /--log-level must be one of error, warn, info, debug/],
    [['renew', '--log-format', 'xml'], /--log-format must be text or json/],
  ])('usage error %p exits 2 with a one-line message', async (argv, message) => {
    const res = await runCli(argv);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('a missing config file is a config error (exit 2) naming the file', async () => {
    const res = await runCli(['renew', '--config', '/nonexistent/certpilot.yaml']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/\/nonexistent\/certpilot\.yaml/);
  });

  test('renew --help shows the command usage', async () => {
    const res = await runCli(['renew', '--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(
      /certpilot renew \[NAME\.\.\.\] \[--force\] \[--dry-run\] \[--override-guard\] \[--json\]/,
    );
  });
});
