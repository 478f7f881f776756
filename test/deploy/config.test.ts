import { parseDeployConfig } from '../../src/config/deploy';
import { DEFAULT_NGINX_RELOAD, DEFAULT_NGINX_TEST } from '../../src/config/defaults';

/** parseDeployConfig: the shape documented in docs/deploy.md and docs/hooks.md, and every problem with its path. */

test('a full example parses into the normalised shape, defaults filled in', () => {
  const { value, issues } = parseDeployConfig(
    {
      hooks: {
        pre: [['systemctl', 'stop', 'thing']],
        post: [{ shell: true, command: 'echo "$CERTPILOT_RENEWED"' }],
      },
      verify: { timeout: '1m', interval: '500ms' },
      notify: {
        on: ['rollback', 'critical'],
        webhooks: [{ url: 'https://hooks.example.test/x', format: 'slack' }],
        email: {
          host: 'smtp.example.test',
          username: 'u',
          password_file: '/run/credentials/smtp',
          from: 'a@example.test',
          to: 'ops@example.test',
        },
      },
      certificates: [
        {
          name: 'www',
          endpoints: [
            'www.example.test',
            { host: 'www.example.test', port: 8443, connectAddress: '10.0.0.2' },
          ],
          deploy: [
            { type: 'nginx' },
            { type: 'systemd', unit: 'haproxy.service', action: 'restart' },
            { type: 'webhook', url: 'http://127.0.0.1:9/x', secret_file: '/etc/certpilot/hmac', retries: 0 },
            { type: 'command', command: ['/usr/local/bin/push', '{fullchain}'], timeout: '2m' },
          ],
        },
        { name: 'quiet', endpoints: ['a.example.test:443'], rollback: false },
        { name: 'plain' },
      ],
    },
    '',
  );
  expect(issues).toEqual([]);
  expect(value.settings.hooks.pre[0]).toEqual({
    argv: ['systemctl', 'stop', 'thing'],
    timeoutMs: 60_000,
    env: {},
  });
  expect(value.settings.hooks.post[0]).toMatchObject({ shell: 'echo "$CERTPILOT_RENEWED"' });
  expect(value.settings.verify).toMatchObject({ timeoutMs: 60_000, intervalMs: 500, maxIntervalMs: 15_000 });
  expect(value.settings.notify).toMatchObject({
    on: ['rollback', 'critical'],
    webhooks: [{ format: 'slack', retries: 2 }],
    email: {
      port: 587,
      tls: 'starttls',
      password: { file: '/run/credentials/smtp' },
      to: ['ops@example.test'],
    },
  });
  const www = value.certificates.www!;
  expect(www.endpoints).toEqual([
    { host: 'www.example.test', port: 443 },
    { host: 'www.example.test', port: 8443, connectAddress: '10.0.0.2' },
  ]);
  expect(www.rollback).toBe(true);
  expect(www.deploy[0]).toMatchObject({
    type: 'nginx',
    test: { argv: DEFAULT_NGINX_TEST },
    reload: { argv: DEFAULT_NGINX_RELOAD },
  });
  expect(www.deploy[1]).toMatchObject({
    type: 'systemd',
    unit: 'haproxy.service',
    action: 'restart',
    systemctl: 'systemctl',
  });
  expect(www.deploy[2]).toMatchObject({
    type: 'webhook',
    secret: { file: '/etc/certpilot/hmac' },
    retries: 0,
  });
  expect(www.deploy[3]).toMatchObject({
    type: 'command',
    command: { argv: ['/usr/local/bin/push', '{fullchain}'], timeoutMs: 120_000 },
  });
  expect(value.certificates.quiet?.rollback).toBe(false);
  expect(value.certificates.plain).toEqual({
    endpoints: [],
    hooks: { pre: [], deploy: [], post: [] },
    deploy: [],
    rollback: false,
  });
});

test.each([
  [{ hooks: { deploy: ['nginx -s reload'] } }, 'hooks.deploy[0]', /argv/],
  [{ hooks: { deploy: [{ command: 'nginx -s reload' }] } }, 'hooks.deploy[0].command', /shell: true/],
  [
    { hooks: { deploy: [{ shell: true, command: ['a'] }] } },
    'hooks.deploy[0].command',
    /one non-empty string/,
  ],
  [{ hooks: { deploy: [{ command: ['x'], timout: '1s' }] } }, 'hooks.deploy[0].timout', /unknown key/],
  [
    { hooks: { deploy: [{ command: ['x'], env: { CERTPILOT_SERIAL: '1' } }] } },
    'hooks.deploy[0].env.CERTPILOT_SERIAL',
    /cannot be overridden/,
  ],
  [{ hooks: { deploy: [{ command: ['x'], cwd: 'relative' }] } }, 'hooks.deploy[0].cwd', /absolute/],
  [{ hooks: { prehook: [] } }, 'hooks.prehook', /unknown key/],
  [{ verify: { timeout: 'soon' } }, 'verify.timeout', /duration/],
  [{ verify: { interval: '10s', maxInterval: '1s' } }, 'verify.maxInterval', /less than interval/],
  [{ notify: { on: ['everything'] } }, 'notify.on[0]', /must be one of/],
  [{ notify: { webhooks: [{ url: 'ftp://x' }] } }, 'notify.webhooks[0].url', /not supported/],
  [
    { notify: { webhooks: [{ url: 'http://x', secret: 's', secret_file: '/s' }] } },
    'notify.webhooks[0].secret',
    /not both/,
  ],
  [{ notify: { email: { host: 'h', from: 'a@b.test' } } }, 'notify.email.to', /at least one/],
  [
    { notify: { email: { host: 'h', from: 'a@b.test', to: ['c@d.test'], password: 'p' } } },
    'notify.email.username',
    /required/,
  ],
  [
    { notify: { email: { host: 'h', from: 'a@b.test', to: ['c@d.test'], tls: 'maybe' } } },
    'notify.email.tls',
    /implicit, starttls or none/,
  ],
  [
    { certificates: [{ name: 'a', endpoints: ['x:99999'] }] },
    'certificates[0].endpoints[0]',
    /between 1 and 65535/,
  ],
  [
    { certificates: [{ name: 'a', endpoints: [{ host: 'x', prot: 1 }] }] },
    'certificates[0].endpoints[0].prot',
    /unknown key/,
  ],
  [{ certificates: [{ name: 'a', rollback: true }] }, 'certificates[0].rollback', /needs endpoints/],
  [{ certificates: [{ name: 'a', rollback: 'yes' }] }, 'certificates[0].rollback', /true or false/],
  [
    { certificates: [{ name: 'a', deploy: [{ type: 'apache' }] }] },
    'certificates[0].deploy[0].type',
    /must be one of/,
  ],
  [
    { certificates: [{ name: 'a', deploy: [{ type: 'nginx', relaod: [] }] }] },
    'certificates[0].deploy[0].relaod',
    /unknown key/,
  ],
  [
    { certificates: [{ name: 'a', deploy: [{ type: 'systemd', unit: '-x' }] }] },
    'certificates[0].deploy[0].unit',
    /not a unit name/,
  ],
  [
    { certificates: [{ name: 'a', deploy: [{ type: 'systemd', unit: 'x', action: 'stop' }] }] },
    'certificates[0].deploy[0].action',
    /reload or restart/,
  ],
  [
    {
      certificates: [
        { name: 'a', deploy: [{ type: 'webhook', url: 'http://x', headers: { 'bad header': 'v' } }] },
      ],
    },
    'certificates[0].deploy[0].headers["bad header"]',
    /header name/,
  ],
  [
    { certificates: [{ name: 'a', deploy: [{ type: 'command' }] }] },
    'certificates[0].deploy[0].command',
    /argv/,
  ],
])('%j -> %s', (raw, path, message) => {
  const { issues } = parseDeployConfig(raw, '');
  expect(issues).toEqual(expect.arrayContaining([{ path, message: expect.stringMatching(message) }]));
});

test('all problems are reported at once, and an inline secret never appears in a message', () => {
  const { issues } = parseDeployConfig(
    {
      notify: { webhooks: [{ url: 'nope', secret: 'sekrit-value', secret_file: 'x' }], email: 5 },
      certificates: [{ name: 'a', deploy: [{ type: 'nope' }], endpoints: 'x' }],
    },
    '',
  );
  expect(issues.map((i) => i.path).sort()).toEqual(
    [
      'certificates[0].deploy[0].type',
      'certificates[0].endpoints',
      'notify.email',
      'notify.webhooks[0].secret',
      'notify.webhooks[0].url',
    ].sort(),
  );
  expect(JSON.stringify(issues)).not.toContain('sekrit-value');
});

test('an alert webhook signature header must be a header name, like a deploy webhook one', () => {
  const { issues } = parseDeployConfig(
    { notify: { webhooks: [{ url: 'https://hooks.example.test/x', signatureHeader: 'X Sig: 1' }] } },
    '',
  );
  expect(issues).toEqual([
    { path: 'notify.webhooks[0].signatureHeader', message: 'not a valid HTTP header name' },
  ]);
});

test('an endpoint or a hook of the wrong shape is a problem at its path, an empty list entry too', () => {
  const { issues } = parseDeployConfig(
    { certificates: [{ name: 'www', endpoints: [null, 443], hooks: { post: [7] } }] },
    '',
  );
  expect(issues).toEqual([
    { path: 'certificates[0].endpoints[0]', message: 'must be "host:port" or a mapping with host, not null' },
    {
      path: 'certificates[0].endpoints[1]',
      message: 'must be "host:port" or a mapping with host, not a number',
    },
    {
      path: 'certificates[0].hooks.post[0]',
      message: 'must be an argv list or a mapping with command, not a number',
    },
  ]);
});
