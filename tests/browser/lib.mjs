// What the browser scenarios share: the consoles under test (from the environment the Rust
// test sets), Chromium launched from the system's own package, signing in as a development
// user, the WCAG check every page gets, and filling in the draft form as a caseworker would.

import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { AxeBuilder } from '@axe-core/playwright';
import { chromium } from 'playwright-core';

// A console under test: its origin and the certificate it serves.
function consoleFromEnvironment(prefix) {
  const url = process.env[`${prefix}_URL`];
  const cert = process.env[`${prefix}_CERT`];
  if (!url || !cert) {
    throw new Error(`${prefix}_URL and ${prefix}_CERT must be set (tests/tests/browser.rs sets them)`);
  }
  return { url: url.replace(/\/$/, ''), cert };
}

// The system with default settings, where the four roles work the Bollnäs case.
export const main = consoleFromEnvironment('TRYGGDEL_CONSOLE');
// A second system whose sessions end after a short idle time.
export const shortSession = {
  ...consoleFromEnvironment('TRYGGDEL_SHORT_SESSION_CONSOLE'),
  idleMs: Number(process.env.TRYGGDEL_SHORT_SESSION_IDLE_MS ?? '2000'),
};

// The base64 SHA-256 of a certificate's public key, as Chromium's SPKI allow-list takes it.
function spkiHash(certPath) {
  const cert = new X509Certificate(readFileSync(certPath));
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

// Chromium from the system's package. TLS is checked, not ignored: each console's certificate
// is issued by its own throw-away development CA, which no trust store holds, so Chromium is
// told to accept exactly the consoles' public keys (`--ignore-certificate-errors-spki-list`)
// and nothing else. Root (as in CI) cannot use Chromium's sandbox.
export async function launchChromium() {
  const executablePath = process.env.TRYGGDEL_CHROMIUM || '/usr/bin/chromium';
  const pinned = [main.cert, shortSession.cert].map(spkiHash).join(',');
  const args = [`--ignore-certificate-errors-spki-list=${pinned}`];
  if (process.getuid?.() === 0) {
    args.push('--no-sandbox');
  }
  return chromium.launch({ executablePath, args });
}

// What must not happen on any page: a script error, a Content-Security-Policy violation or any
// other console error, or a dialog (an injected `alert` would open one). A page's own error
// status (a scenario asserts it) and the browser's own request for /favicon.ico are no problem.
function watch(page, problems) {
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const url = message.location().url;
    const failedLoad = message.text().startsWith('Failed to load resource: the server responded with a status of');
    if (failedLoad && (url === page.url() || new URL(url).pathname === '/favicon.ico')) return;
    problems.push(`console error: ${message.text()} (${url})`);
  });
  page.on('dialog', async (dialog) => {
    problems.push(`dialog opened: ${dialog.type()} ${dialog.message()}`);
    await dialog.dismiss();
  });
}

// One user in a browser context of their own, signed in through the development sign-in page
// once per system (sign-in attempts are rate-limited per address, so scenarios share them).
export class User {
  static #signedIn = new Map();

  constructor(context, system, userId) {
    this.context = context;
    this.system = system;
    this.userId = userId;
    this.problems = [];
    context.on('page', (page) => watch(page, this.problems));
  }

  static async signIn(browser, system, userId) {
    const key = `${system.url} ${userId}`;
    if (!User.#signedIn.has(key)) {
      User.#signedIn.set(key, User.#signInAnew(browser, system, userId));
    }
    const user = await User.#signedIn.get(key);
    await user.goto('/');
    return user;
  }

  static async #signInAnew(browser, system, userId) {
    const context = await browser.newContext({ locale: 'sv-SE' });
    context.setDefaultTimeout(15_000);
    const user = new User(context, system, userId);
    user.page = await context.newPage();
    await user.page.goto(`${system.url}/logga-in`);
    await checkAccessibility(user.page, 'sign-in page');
    const row = user.page.getByRole('row').filter({ has: user.page.getByText(userId, { exact: true }) });
    await Promise.all([user.page.waitForURL((url) => !url.pathname.startsWith('/logga-in')), row.getByRole('button').click()]);
    return user;
  }

  // Another tab of the same signed-in user.
  async newTab() {
    return this.context.newPage();
  }

  async goto(path, page = this.page) {
    return page.goto(`${this.system.url}${path}`);
  }

  // The end of a scenario: closes its other tabs, then fails on anything `watch` saw.
  async done() {
    for (const page of this.context.pages()) {
      if (page !== this.page) await page.close();
    }
    const problems = this.problems.splice(0);
    assert.deepEqual(problems, [], `${this.userId}'s pages reported problems`);
  }
}

// The WCAG 2.0 and 2.1 A and AA rules of axe-core: the page must have no violation.
export async function checkAccessibility(page, what) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const violations = results.violations.map(
    (violation) =>
      `${violation.id} (${violation.impact}): ${violation.help}\n` +
      violation.nodes.map((node) => `    ${node.target.join(' ')}: ${node.failureSummary.replace(/\n/g, ' ')}`).join('\n'),
  );
  assert.deepEqual(violations, [], `axe found WCAG violations on the ${what} (${page.url()})`);
}

// A valid Swedish personnummer `YYYYMMDD-NNNC` (Luhn check digit over YYMMDDNNN).
export function personnummer(year, month, day, birthNumber) {
  const two = (n) => String(n).padStart(2, '0');
  const nine = `${two(year % 100)}${two(month)}${two(day)}${String(birthNumber).padStart(3, '0')}`;
  const sum = [...nine]
    .map((digit, position) => Number(digit) * (position % 2 === 0 ? 2 : 1))
    .reduce((total, product) => total + Math.floor(product / 10) + (product % 10), 0);
  const check = (10 - (sum % 10)) % 10;
  return `${Math.floor(year / 100)}${nine.slice(0, 6)}-${nine.slice(6)}${check}`;
}

// A case reference no other scenario uses.
export function caseReference(what) {
  return `IFO-${what}-${Date.now().toString(36)}`;
}

// The checklist of OSL 10:18 c, by the keys of the legal-basis registry.
export const CHECKLIST = ['special_circumstances', 'contributes_to_prevention', 'not_unsuitable'];

// Fills the open draft form with a complete draft under OSL 10:18 c: a threat to kill a
// spouse, made-up people with valid identity numbers, the checklist answered yes with
// justifications, the subject's name chosen for disclosure. The crime is chosen last, so its
// `change` event is the one that asks for the live assessment.
export async function fillCompleteDraft(page, { reference, justification = 'Skriftlig motivering enligt riskbedömning' }) {
  await page.locator('#case_reference').fill(reference);
  await page.locator('#legal_basis_id').selectOption('OSL-10-18c');
  await page.locator('#claimed_secrecy').selectOption('OSL-26-1');
  await page.locator('#recipient').selectOption('polismyndigheten');
  for (const key of CHECKLIST) {
    await page.locator(`#checklist_${key}`).check();
    await page.locator(`#justification_${key}`).fill(justification);
  }
  await page.locator('#subject_identity_number').fill(personnummer(1980, 5, 17, 111));
  await page.locator('#subject_name').fill('Testperson Ett');
  await page.locator('#victim_identity_number').fill(personnummer(1982, 5, 17, 222));
  await page.locator('#victim_name').fill('Testperson Två');
  await page.locator('#relation').selectOption('spouse');
  await page.locator('#risk_description').fill('Allvarliga hot om att döda maka');
  await page.locator('#item_subject_name').check();
  await page.locator('#reason_subject_name').fill('identifiering');
  await page.locator('#crime_time').selectOption('future_risk');
  await page.locator('#crime_id').selectOption('mord');
}

// The live assessment's verdict "Uppfyllt" ("Inte uppfyllt" is another text).
export function assessmentPassed(page) {
  return page.locator('#bedomning').getByText('Uppfyllt', { exact: true });
}

// Saves the draft form; answers the case's id from the case page it leads to.
export async function saveDraft(page) {
  await Promise.all([
    page.waitForURL(/\/arenden\/[0-9a-f-]{36}$/),
    page.getByRole('button', { name: 'Spara utkast' }).click(),
  ]);
  return new URL(page.url()).pathname.split('/').pop();
}

// Drafts a complete case as `user` through the form; answers its id.
export async function draftCase(user, options) {
  await user.goto('/utkast/ny');
  await fillCompleteDraft(user.page, options);
  await assessmentPassed(user.page).waitFor();
  return saveDraft(user.page);
}

// The value of a fact (`dt`/`dd`) on a case or delivery page.
export function fact(page, term) {
  return page.locator('dl.facts dt', { hasText: new RegExp(`^${term}$`) }).locator('xpath=following-sibling::dd[1]');
}
