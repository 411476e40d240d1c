// The web view in headless Chromium, against a running proxy in front of real Dovecot.
//   node ui_e2e.mjs --chromium PATH --ui HOST:PORT --proxy HOST:PORT --shot FILE
// Asserts what the page shows: a session appears live, a hold armed from the page holds
// the next reply, which is edited there and reaches the client edited; a fault added
// from the page takes effect on the next connection and its finding is highlighted;
// the fault is removed from the page; the filter narrows the list. Exit 0 when all hold.
import net from 'node:net';
import { chromium } from 'playwright-core';

const arg = (name) => {
  const i = process.argv.indexOf('--' + name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`--${name} is required`);
  return process.argv[i + 1];
};
const [uiAddr, proxyAddr, shot, chromiumPath, staticPage] = [arg('ui'), arg('proxy'), arg('shot'), arg('chromium'), arg('static')];
const step = (text) => console.log(`ui_e2e: ${text}`);

// A line-based LMTP client: send() writes, line() waits for the next reply line (10 s).
class Lmtp {
  constructor(addr) {
    const [host, port] = addr.split(':');
    this.lines = [];
    this.waiters = [];
    this.buf = '';
    this.sock = net.connect(Number(port), host);
    this.sock.setEncoding('latin1');
    this.sock.on('data', (d) => {
      this.buf += d;
      let at;
      while ((at = this.buf.indexOf('\r\n')) >= 0) {
        const l = this.buf.slice(0, at);
        this.buf = this.buf.slice(at + 2);
        if (this.waiters.length) this.waiters.shift()(l); else this.lines.push(l);
      }
    });
  }
  send(text) { this.sock.write(text); }
  line(ms = 10000) {
    if (this.lines.length) return Promise.resolve(this.lines.shift());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply within ' + ms + ' ms')), ms);
      this.waiters.push((l) => { clearTimeout(t); resolve(l); });
    });
  }
  async reply(ms) {  // a whole (multi-line) reply
    const out = [];
    for (;;) {
      const l = await this.line(ms);
      out.push(l);
      if (l.length < 4 || l[3] !== '-') return out;
    }
  }
  close() { this.sock.end(); }
}
const expect = (cond, what) => { if (!cond) throw new Error('expected: ' + what); };

const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`http://${uiAddr}/`);
  await page.getByTestId('status').filter({ hasText: 'live' }).waitFor({ timeout: 10000 });
  step('page loaded, WebSocket live');

  // 1. A session appears live, while it is open.
  const a = new Lmtp(proxyAddr);
  expect((await a.reply())[0].startsWith('220'), 'a 220 greeting from Dovecot');
  a.send('LHLO e2e.test\r\n');
  expect((await a.reply()).at(-1).startsWith('250 '), 'LHLO answered 250');
  const rowA = page.getByTestId('session-row').filter({ hasText: 'open' }).first();
  await rowA.waitFor({ timeout: 10000 });
  const connA = await rowA.getAttribute('data-conn');
  step(`session ${connA} appeared live`);
  await rowA.click();
  await page.getByTestId('ladder-row').filter({ hasText: 'LHLO e2e.test' }).waitFor({ timeout: 10000 });

  // 2. Hold the next reply from the page, edit it, release it: the client gets the edit.
  await page.getByTestId('hold').click();
  await page.getByTestId('hold').filter({ hasText: 'Holding' }).waitFor({ timeout: 5000 });
  a.send('MAIL FROM:<sender@example.org>\r\n');
  const held = page.getByTestId('held');
  await held.waitFor({ timeout: 10000 });
  const original = await page.getByTestId('held-text').inputValue();
  expect(original.startsWith('250'), `the held reply is Dovecot's 250 to MAIL (got '${original}')`);
  step(`held: ${original}`);
  await new Promise((r) => setTimeout(r, 800));
  expect(a.lines.length === 0, 'nothing reaches the client while the reply is held');
  await page.getByTestId('held-text').fill('451 4.3.0 edited in the web view');
  await page.getByTestId('send-edited').click();
  const got = await a.line();
  expect(got === '451 4.3.0 edited in the web view', `the client got the edited reply (got '${got}')`);
  await page.locator('[data-testid=ladder-row][data-injected=true]').filter({ hasText: 'edited in the web view' }).waitFor({ timeout: 10000 });
  await page.getByTestId('fault-row').filter({ hasText: 'web view' }).waitFor({ timeout: 10000 });
  step('the edited reply reached the client and is marked as written by lockstep');
  a.send('RSET\r\n');
  expect((await a.line()).startsWith('250'), 'RSET answered 250');
  a.send('QUIT\r\n');
  expect((await a.line()).startsWith('221'), 'QUIT answered 221');
  a.close();
  await page.locator(`[data-testid=session-row][data-conn="${connA}"]`).filter({ hasText: 'closed' }).waitFor({ timeout: 10000 });

  // 3. A fault added from the page takes effect on the next connection.
  await page.getByTestId('preset').selectOption('cyrus-lockers');
  await page.getByTestId('add-fault-button').click();
  await page.locator('[data-testid=fault][data-name="cyrus-lockers"]').waitFor({ timeout: 10000 });
  step('fault cyrus-lockers added from the page');
  const b = new Lmtp(proxyAddr);
  await b.reply();
  b.send('LHLO e2e.test\r\n');
  await b.reply();
  b.send('MAIL FROM:<sender@example.org>\r\nRCPT TO:<alice@lab.test>\r\nDATA\r\n');
  expect((await b.line()).startsWith('250'), 'MAIL 250');
  expect((await b.line()).startsWith('250'), 'RCPT 250');
  expect((await b.line()).startsWith('354'), 'DATA 354');
  b.send('Subject: lockstep web view e2e\r\n\r\nhello alice\r\n.\r\n');
  const first = await b.line();
  expect(first === '350 lockers', `the injected stray reply came first (got '${first}')`);
  const second = await b.line();
  expect(second.startsWith('250'), `then Dovecot's own 250 (got '${second}')`);
  b.send('QUIT\r\n');
  expect((await b.line()).startsWith('221'), 'QUIT answered 221');
  b.close();
  const rowB = page.getByTestId('session-row').filter({ hasNot: page.locator(`text="${connA}"`) }).filter({ hasText: 'fault' }).first();
  await rowB.waitFor({ timeout: 10000 });
  await rowB.click();
  const finding = page.locator('[data-testid=finding][data-severity=error]').first();
  await finding.waitFor({ timeout: 10000 });
  const rule = await finding.getAttribute('data-rule');
  expect(rule === 'LMTP-4.2-PER-RCPT-REPLIES' || rule.startsWith('DESYNC-'), `an error finding about the stray reply (got ${rule})`);
  const color = await finding.evaluate((e) => getComputedStyle(e).borderLeftColor);
  expect(color === 'rgb(198, 40, 40)', `the finding is highlighted in red (border ${color})`);
  await page.locator('.lrow.sev-error').filter({ hasText: '350 lockers' }).waitFor({ timeout: 5000 });
  await page.getByTestId('fault-row').filter({ hasText: 'cyrus-lockers' }).waitFor({ timeout: 5000 });
  await page.getByTestId('rcpt-group').first().waitFor({ timeout: 5000 });
  step(`the fault took effect: ${rule} highlighted on '350 lockers'`);
  await page.screenshot({ path: shot, fullPage: false });

  // 4. Remove the fault from the page.
  await page.locator('[data-testid=fault][data-name="cyrus-lockers"] [data-testid=remove-fault]').click();
  await page.locator('[data-testid=fault][data-name="cyrus-lockers"]').waitFor({ state: 'detached', timeout: 10000 });
  step('fault removed from the page');

  // 5. The filter narrows the session list to the sessions with that rule.
  await page.getByTestId('filter').fill(rule.toLowerCase());
  const rows = await page.getByTestId('session-row').count();
  const rowsA = await page.locator(`[data-testid=session-row][data-conn="${connA}"]`).count();
  expect(rows >= 1 && rowsA === 0, `the filter keeps the faulted session only (rows ${rows}, A ${rowsA})`);
  expect(pageErrors.length === 0, 'no script errors: ' + pageErrors.join('; '));

  // 6. The offline page of `check --html`: the same view from a file, no server.
  const off = await browser.newPage({ viewport: { width: 1500, height: 950 } });
  off.on('pageerror', (e) => pageErrors.push(String(e)));
  await off.goto('file://' + staticPage);
  await off.getByTestId('ladder').waitFor({ timeout: 10000 });
  expect((await off.getByTestId('status').textContent()).startsWith('offline'), 'the offline page says so');
  expect(await off.locator('[data-testid=finding][data-severity=error]').count() > 0, 'the offline page highlights the findings');
  expect(await off.locator('.lrow.sev-error').filter({ hasText: '350 lockers' }).count() === 1, "the offline ladder marks '350 lockers'");
  expect(pageErrors.length === 0, 'no script errors offline: ' + pageErrors.join('; '));
  step('the offline page shows the incident');
  step('all assertions held');
} finally {
  await browser.close();
}
