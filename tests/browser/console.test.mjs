// The console in a real browser: the Bollnäs case through the UI across the four roles, the
// refusals a user can run into, and the WCAG 2.0/2.1 A and AA rules of axe-core on every page
// on the way. Run by tests/tests/browser.rs, which starts the systems and sets the environment
// (see lib.mjs); on its own: `node --test tests/browser/console.test.mjs` with that environment.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  User,
  assessmentPassed,
  caseReference,
  checkAccessibility,
  draftCase,
  fact,
  fillCompleteDraft,
  launchChromium,
  main,
  personnummer,
  saveDraft,
  shortSession,
} from './lib.mjs';

let browser;

// Marks the document a page shows, to tell later whether it is still the same one (a reload
// or a navigation makes a new document without the mark).
async function markDocument(page) {
  await page.evaluate(() => {
    window.tryggdelSameDocument = true;
  });
}

async function isMarkedDocument(page) {
  return page.evaluate(() => window.tryggdelSameDocument === true);
}

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

test('the Bollnäs case from draft to verified audit entry, through the UI of the four roles', async () => {
  // The police officer of region Mitt has the inbox open before anything is approved.
  const police = await User.signIn(browser, main, 'polis-mitt-1');
  assert.equal(new URL(police.page.url()).pathname, '/inkommande');
  await police.page.locator('#live-status', { hasText: 'Live: nya leveranser visas direkt.' }).waitFor();
  await checkAccessibility(police.page, 'police inbox');
  await markDocument(police.page);

  // The caseworker drafts with the live assessment and submits.
  const caseworker = await User.signIn(browser, main, 'handlaggare-bollnas');
  const page = caseworker.page;
  assert.equal(new URL(page.url()).pathname, '/utkast');
  await checkAccessibility(page, 'case list');
  await page.getByRole('navigation', { name: 'Huvudmeny' }).getByRole('link', { name: 'Nytt utkast' }).click();
  await page.waitForURL(/\/utkast\/ny$/);
  await checkAccessibility(page, 'new draft form');
  assert.equal(await assessmentPassed(page).count(), 0, 'an empty draft must not pass');
  await markDocument(page);
  const reference = caseReference('bollnas');
  await fillCompleteDraft(page, { reference });
  await assessmentPassed(page).waitFor();
  assert.ok(await isMarkedDocument(page), 'the assessment must turn without leaving the page (htmx)');
  assert.match(await page.locator('#bedomning').innerText(), /grunden OSL-10-18c är uppfylld i dag/);
  await checkAccessibility(page, 'draft form with a passed assessment');
  const id = await saveDraft(page);
  await checkAccessibility(page, 'case page of a draft');
  assert.equal(await fact(page, 'Status').innerText(), 'Utkast');
  assert.equal(await fact(page, 'Ärendenummer').innerText(), reference);
  await page.getByRole('button', { name: 'Skicka för beslut' }).click();
  await page.waitForURL(new RegExp(`/arenden/${id}$`));
  await fact(page, 'Status').filter({ hasText: 'Att besluta' }).waitFor();
  await checkAccessibility(page, 'case page of a submitted case');

  // The decision maker opens the queue, sees the payload with its SHA-256, approves.
  const decider = await User.signIn(browser, main, 'beslut-bollnas');
  await decider.page.getByRole('navigation', { name: 'Huvudmeny' }).getByRole('link', { name: 'Att besluta' }).click();
  await decider.page.waitForURL(/\/att-besluta$/);
  await checkAccessibility(decider.page, 'decision queue');
  // Cases are told apart by the last 8 characters of their id.
  await decider.page.getByRole('link', { name: id.slice(-8), exact: true }).click();
  await decider.page.waitForURL(new RegExp(`/att-besluta/${id}$`));
  const payload = decider.page.getByRole('table', { name: 'Uppgifter som lämnas ut' });
  assert.equal(await payload.getByRole('rowheader').first().innerText(), 'Den enskildes namn');
  assert.equal(await payload.getByRole('cell').first().innerText(), 'Testperson Ett');
  const sha256 = await decider.page.locator('p', { hasText: 'SHA-256 av exakt det underlag polisen får' }).locator('code').innerText();
  assert.match(sha256, /^[0-9a-f]{64}$/);
  await checkAccessibility(decider.page, 'decision page');
  await decider.page.getByLabel('Kommentar (valfri)').fill('Godkänt enligt delegation');
  await decider.page.getByRole('button', { name: 'Godkänn och skicka till polisen' }).click();
  await decider.page.waitForURL(new RegExp(`/arenden/${id}$`));
  assert.equal(await fact(decider.page, 'Underlagets SHA-256').innerText(), sha256);
  await checkAccessibility(decider.page, 'case page of an approved case');

  // The delivery appears in the open inbox without a reload; the officer acknowledges it.
  const row = police.page.locator(`#leverans-${id}`);
  await row.waitFor({ timeout: 20_000 });
  assert.ok(await isMarkedDocument(police.page), 'the delivery must appear without reloading the inbox');
  assert.match(await police.page.locator('#live-status').innerText(), /Ny leverans: Bollnäs kommun/);
  await checkAccessibility(police.page, 'police inbox with a live delivery');
  await row.getByRole('link').click();
  await police.page.waitForURL(new RegExp(`/inkommande/${id}$`));
  assert.equal(await police.page.locator('p', { hasText: 'SHA-256:' }).locator('code').innerText(), sha256);
  await checkAccessibility(police.page, 'delivery page');
  await police.page.getByLabel('Polisens diarienummer').fill('5000-K123456-26');
  await police.page.getByRole('button', { name: 'Kvittera mottagandet' }).click();
  await police.page.getByRole('heading', { name: `Leverans ${id.slice(-8)} är kvitterad` }).waitFor();
  assert.match(await fact(police.page, 'Kvittens').innerText(), /polis-mitt-1, diarienummer 5000-K123456-26/);
  assert.equal(await fact(police.page, 'Underlagets SHA-256').innerText(), sha256);
  await checkAccessibility(police.page, 'receipt page');

  // The receipt reaches the caseworker's case (through the notification service's relay).
  for (let attempt = 0; ; attempt += 1) {
    await caseworker.goto(`/arenden/${id}`);
    if ((await fact(page, 'Status').innerText()) === 'Kvitterat') break;
    assert.ok(attempt < 50, 'the case was never shown acknowledged');
    await page.waitForTimeout(200);
  }
  assert.match(await fact(page, 'Kvittens').innerText(), /polisens diarienummer 5000-K123456-26/);
  await checkAccessibility(page, 'case page of an acknowledged case');
  await page.getByRole('link', { name: 'Tidslinje' }).click();
  await page.waitForURL(new RegExp(`/arenden/${id}/tidslinje$`));
  assert.match(await page.locator('main ol').innerText(), /Kvitterade med diarienummer 5000-K123456-26/);
  await checkAccessibility(page, 'timeline');
  await caseworker.goto(`/arenden/${id}/utskrift`);
  await checkAccessibility(page, 'print view of the decision');

  // The compliance officer finds the case's audit entries and sees an entry's proof verified.
  const compliance = await User.signIn(browser, main, 'granskare-ivo');
  assert.equal(new URL(compliance.page.url()).pathname, '/granskning');
  await checkAccessibility(compliance.page, 'audit search form');
  const results = compliance.page.getByRole('table', { name: 'Poster som matchar sökningen' });
  for (let attempt = 0; ; attempt += 1) {
    await compliance.page.getByLabel('Ärende (id)').fill(id);
    await compliance.page.getByRole('button', { name: 'Sök', exact: true }).click();
    await results.waitFor();
    const actions = await results.locator('tbody tr td:nth-child(3)').allInnerTexts();
    if (actions.includes('disclosure.approved') && actions.some((action) => action.includes('acknowledged'))) break;
    assert.ok(attempt < 50, `the audit log never held the approval and the acknowledgement: ${actions}`);
    await compliance.page.waitForTimeout(200);
  }
  await checkAccessibility(compliance.page, 'audit search results');
  const approval = results.getByRole('row').filter({ hasText: 'disclosure.approved' });
  await approval.getByRole('link').click();
  await compliance.page.waitForURL(/\/granskning\/post\/\d+$/);
  const verified = compliance.page.locator('p.verified');
  assert.match(await verified.innerText(), /^Verifierad: posten ingår i loggen enligt den signerade kontrollpunkten/);
  assert.match(await compliance.page.locator('main pre').first().innerText(), new RegExp(id));
  await checkAccessibility(compliance.page, 'audit entry with its verified proof');

  for (const user of [police, caseworker, decider, compliance]) await user.done();
});

test('a request for information from the police, answered with a disclosure and refused with a weighing', async () => {
  // An officer of region Syd asks Bollnäs twice.
  const police = await User.signIn(browser, main, 'polis-syd-1');
  await police.page.getByRole('navigation', { name: 'Huvudmeny' }).getByRole('link', { name: 'Begäranden' }).click();
  await police.page.waitForURL(/\/begaranden$/);
  await checkAccessibility(police.page, "an officer's requests");
  const ask = async (what) => {
    await police.goto('/begaranden/ny');
    await police.page.getByLabel('Organisation som tillfrågas').selectOption('bollnas-kommun');
    await police.page.getByLabel('Vilka uppgifter som begärs').fill(what);
    await police.page.getByLabel('Syfte: vad uppgifterna behövs till').fill('Förhindra brott mot en närstående');
    await police.page.getByLabel('Rättslig grund som åberopas').fill('Uppgiftsskyldighet');
    const soon = new Date(Date.now() + 3 * 24 * 3600 * 1000).toISOString().slice(0, 10);
    await police.page.getByLabel('Svar senast').fill(soon);
    await Promise.all([
      police.page.waitForURL(/\/begaranden\/[0-9a-f-]{36}$/),
      police.page.getByRole('button', { name: 'Skicka begäran' }).click(),
    ]);
    return new URL(police.page.url()).pathname.split('/').pop();
  };
  // A deadline in the past is refused, naming the field, and keeps what was typed.
  await police.goto('/begaranden/ny');
  await checkAccessibility(police.page, 'new request form');
  await police.page.getByLabel('Organisation som tillfrågas').selectOption('bollnas-kommun');
  await police.page.getByLabel('Vilka uppgifter som begärs').fill('Uppgifter om hot');
  await police.page.getByLabel('Syfte: vad uppgifterna behövs till').fill('Förhindra brott');
  await police.page.getByLabel('Rättslig grund som åberopas').fill('Uppgiftsskyldighet');
  await police.page.getByLabel('Svar senast').fill('2020-01-01');
  await police.page.getByRole('button', { name: 'Skicka begäran' }).click();
  await police.page.locator('#reply_by-fel', { hasText: 'i framtiden' }).waitFor();
  assert.equal(await police.page.getByLabel('Vilka uppgifter som begärs').inputValue(), 'Uppgifter om hot');
  await checkAccessibility(police.page, 'new request form with a refusal');
  const toAnswer = await ask('Kända hot mot den närstående');
  assert.equal(await fact(police.page, 'Status').innerText(), 'Öppen');
  await checkAccessibility(police.page, "an officer's open request");
  const toRefuse = await ask('Hela journalen');

  // The caseworker answers the first with a disclosure; it goes to the asking region.
  const caseworker = await User.signIn(browser, main, 'handlaggare-bollnas');
  await caseworker.goto('/begaranden');
  await checkAccessibility(caseworker.page, "the organisation's request queue");
  await caseworker.page.getByRole('link', { name: toAnswer.slice(-8), exact: true }).click();
  await caseworker.page.waitForURL(new RegExp(`/begaranden/${toAnswer}$`));
  await checkAccessibility(caseworker.page, 'an open request to the organisation');
  await caseworker.page.getByRole('link', { name: 'Besvara med ett utlämnande' }).click();
  await caseworker.page.waitForURL(new RegExp(`/begaranden/${toAnswer}/besvara$`));
  await checkAccessibility(caseworker.page, 'draft form answering a request');
  await fillCompleteDraft(caseworker.page, { reference: caseReference('begaran') });
  await assessmentPassed(caseworker.page).waitFor();
  const id = await saveDraft(caseworker.page);
  assert.match(await fact(caseworker.page, 'Mottagare').innerText(), /Region Syd/);
  assert.match(await fact(caseworker.page, 'Besvarar').innerText(), new RegExp(toAnswer.slice(-8)));
  await caseworker.page.getByRole('button', { name: 'Skicka för beslut' }).click();
  await caseworker.page.waitForURL(new RegExp(`/arenden/${id}$`));

  // The decision maker approves the answer and refuses the second request with a weighing.
  const decider = await User.signIn(browser, main, 'beslut-bollnas');
  await decider.goto(`/att-besluta/${id}`);
  await decider.page.getByRole('button', { name: 'Godkänn och skicka till polisen' }).click();
  await decider.page.waitForURL(new RegExp(`/arenden/${id}$`));
  await decider.goto(`/begaranden/${toRefuse}`);
  await decider.page.getByRole('button', { name: 'Avslå begäran' }).click();
  await decider.page.locator('#reason-fel').waitFor();
  await checkAccessibility(decider.page, 'a refusal without its reason');
  await decider.page.getByLabel('Skäl').fill('Uppgifterna omfattas av sekretess som inte bryts.');
  await decider.page.getByLabel('Intresseavvägning').fill('Intresset av att lämna ut väger inte tyngre.');
  await decider.page.getByRole('button', { name: 'Avslå begäran' }).click();
  await fact(decider.page, 'Status').filter({ hasText: 'Avslagen' }).waitFor();

  // The officer sees both outcomes.
  await police.goto(`/begaranden/${toAnswer}`);
  assert.equal(await fact(police.page, 'Status').innerText(), 'Besvarad');
  await checkAccessibility(police.page, 'an answered request');
  await police.goto(`/begaranden/${toRefuse}`);
  assert.equal(await fact(police.page, 'Status').innerText(), 'Avslagen');
  assert.equal(await fact(police.page, 'Intresseavvägning').innerText(), 'Intresset av att lämna ut väger inte tyngre.');
  await checkAccessibility(police.page, 'a refused request');
  // The answer is in region Syd's inbox.
  for (let attempt = 0; ; attempt += 1) {
    const response = await police.goto(`/inkommande/${id}`);
    if (response.status() === 200) break;
    assert.ok(attempt < 50, 'the answer never reached region Syd');
    await police.page.waitForTimeout(200);
  }
  assert.match(await fact(police.page, 'Inkorg').innerText(), /Region Syd/);
  await checkAccessibility(police.page, 'the answer in the asking region');

  for (const user of [police, caseworker, decider]) await user.done();
});

test('the drafter may not approve their own case: the four-eyes sentence', async () => {
  const decider = await User.signIn(browser, main, 'beslut-bollnas');
  const id = await draftCase(decider, { reference: caseReference('fyra-ogon') });
  await decider.page.getByRole('button', { name: 'Skicka för beslut' }).click();
  await decider.page.getByRole('link', { name: 'Till beslut' }).click();
  await decider.page.waitForURL(new RegExp(`/att-besluta/${id}$`));
  await decider.page.getByRole('button', { name: 'Godkänn och skicka till polisen' }).click();
  const refusal = decider.page.locator('#fel');
  assert.match(await refusal.innerText(), /Fyraögonsprincipen: den som skrivit utkastet får inte själv besluta om det/);
  await checkAccessibility(decider.page, 'decision page with the four-eyes refusal');
  await decider.goto(`/arenden/${id}`);
  assert.equal(await fact(decider.page, 'Status').innerText(), 'Att besluta');
  await decider.done();
});

test("another organisation's case opened by its URL is not found", async () => {
  const bollnas = await User.signIn(browser, main, 'handlaggare-bollnas');
  const id = await draftCase(bollnas, { reference: caseReference('annan-org') });
  await bollnas.done();

  const jonkoping = await User.signIn(browser, main, 'handlaggare-jonkoping');
  for (const path of [`/arenden/${id}`, `/arenden/${id}/redigera`, `/arenden/${id}/tidslinje`]) {
    const response = await jonkoping.goto(path);
    assert.equal(response.status(), 404, path);
    assert.equal(await jonkoping.page.getByRole('heading', { level: 1 }).innerText(), 'Sidan finns inte');
    assert.doesNotMatch(await jonkoping.page.content(), /annan-org/);
  }
  await checkAccessibility(jonkoping.page, 'not-found page');
  await jonkoping.done();
});

test('a stale save shows both versions and overwrites nothing', async () => {
  const caseworker = await User.signIn(browser, main, 'handlaggare-bollnas');
  const id = await draftCase(caseworker, { reference: caseReference('konflikt') });
  const first = caseworker.page;
  const second = await caseworker.newTab();
  await caseworker.goto(`/arenden/${id}/redigera`, first);
  await caseworker.goto(`/arenden/${id}/redigera`, second);

  await first.locator('#risk_description').fill('Första sparade versionen');
  await saveDraft(first);
  await second.locator('#risk_description').fill('Andra, inaktuella versionen');
  await second.getByRole('button', { name: 'Spara utkast' }).click();
  await second.getByRole('heading', { name: 'Två versioner' }).waitFor();
  const differs = second.getByRole('table', { name: 'Fält som skiljer sig' }).getByRole('row').filter({ hasText: 'Riskbeskrivning' });
  assert.deepEqual(await differs.getByRole('cell').allInnerTexts(), ['Första sparade versionen', 'Andra, inaktuella versionen']);
  assert.equal(await second.locator('#risk_description').inputValue(), 'Andra, inaktuella versionen');
  await checkAccessibility(second, 'conflict view');

  await caseworker.goto(`/arenden/${id}`, first);
  assert.equal(await fact(first, 'Riskbeskrivning').innerText(), 'Första sparade versionen');
  await caseworker.done();
});

test('a <script> in a justification is shown as text and never runs', async () => {
  const script = '<script>alert(1)</script>';
  const caseworker = await User.signIn(browser, main, 'handlaggare-bollnas');
  const id = await draftCase(caseworker, { reference: caseReference('skript'), justification: script });
  const checklist = fact(caseworker.page, 'Checklista');
  assert.equal((await checklist.innerText()).split(script).length - 1, 3, 'each justification shown as typed');
  assert.equal(await caseworker.page.locator('main script').count(), 0);
  await checkAccessibility(caseworker.page, 'case page with markup in a justification');
  await caseworker.page.getByRole('button', { name: 'Skicka för beslut' }).click();
  await caseworker.page.waitForURL(new RegExp(`/arenden/${id}$`));
  await caseworker.done();

  const decider = await User.signIn(browser, main, 'beslut-bollnas');
  await decider.goto(`/att-besluta/${id}`);
  assert.match(await decider.page.locator('main').innerText(), /Motivering: <script>alert\(1\)<\/script>/);
  assert.equal(await decider.page.locator('main script').count(), 0);
  await decider.done(); // fails if an alert dialog opened on any of these pages
});

test('a forged request without the CSRF token, or from another origin, is refused', async () => {
  const caseworker = await User.signIn(browser, main, 'handlaggare-bollnas');
  const id = await draftCase(caseworker, { reference: caseReference('csrf') });

  // The console's own form, from this origin with the session cookie, but without its token.
  const submit = caseworker.page.locator(`form[action="/arenden/${id}/skicka"]`);
  await submit.locator('input[name="csrf"]').evaluate((field) => field.remove());
  const [withoutToken] = await Promise.all([
    caseworker.page.waitForResponse(`${main.url}/arenden/${id}/skicka`),
    submit.getByRole('button', { name: 'Skicka för beslut' }).click(),
  ]);
  assert.equal(withoutToken.status(), 403);
  await caseworker.page.getByRole('heading', { name: 'Begäran avvisades' }).waitFor();
  await checkAccessibility(caseworker.page, 'refused-request page');

  // A form on another site posting to the console: the browser names that site as Origin.
  const attacker = 'https://angripare.example';
  await caseworker.context.route(`${attacker}/**`, (route) =>
    route.fulfill({
      contentType: 'text/html',
      body: `<!doctype html><html lang="sv"><title>Vinst</title><form method="post" action="${main.url}/arenden/${id}/skicka">
        <input type="hidden" name="expected_version" value="1"><button>Hämta vinsten</button></form></html>`,
    }),
  );
  const forged = await caseworker.newTab();
  await forged.goto(`${attacker}/vinst`);
  const [response] = await Promise.all([forged.waitForResponse(`${main.url}/arenden/${id}/skicka`), forged.getByRole('button').click()]);
  assert.equal(response.status(), 403);
  await forged.getByRole('heading', { name: 'Begäran avvisades' }).waitFor();

  await caseworker.context.unroute(`${attacker}/**`);
  await caseworker.goto(`/arenden/${id}`);
  assert.equal(await fact(caseworker.page, 'Status').innerText(), 'Utkast', 'neither request submitted the draft');
  await caseworker.done();
});

test('a subject report (registerutdrag) leaves out a case while a hold holds on it', async () => {
  // The caseworker drafts a case about the subject every scenario uses.
  const caseworker = await User.signIn(browser, main, 'handlaggare-bollnas');
  const id = await draftCase(caseworker, { reference: caseReference('sparr') });
  const short = id.slice(-8);

  // Bollnäs's compliance officer finds it in the person's report.
  const officer = await User.signIn(browser, main, 'granskare-bollnas');
  const page = officer.page;
  await page.getByRole('navigation', { name: 'Huvudmeny' }).getByRole('link', { name: 'Registerutdrag' }).click();
  await page.waitForURL(/\/granskning\/registerutdrag$/);
  await checkAccessibility(page, 'subject report form');
  const disclosures = page.getByRole('table', { name: 'Utlämnanden' });
  const report = async () => {
    await page.getByLabel('Personnummer').fill(personnummer(1980, 5, 17, 111));
    await page.getByRole('button', { name: 'Visa registerutdrag' }).click();
    await disclosures.waitFor();
    return disclosures.locator('tbody td:first-child').allInnerTexts();
  };
  assert.ok((await report()).includes(short), 'the draft is in the report');
  assert.equal(await page.getByRole('table', { name: 'Åtkomster till uppgifterna' }).count(), 1);
  await checkAccessibility(page, 'subject report');

  // The caseworker places a hold from the case page.
  await caseworker.goto(`/arenden/${id}`);
  await caseworker.page.locator('main').getByRole('link', { name: 'Spärrar' }).click();
  await caseworker.page.waitForURL(new RegExp(`/sparrar\\?arende=${id}$`));
  await checkAccessibility(caseworker.page, 'holds page');
  const until = new Date(Date.now() + 30 * 24 * 3600 * 1000).toISOString().slice(0, 10);
  await caseworker.page.getByLabel('Rättslig grund').fill('RB-23-18');
  await caseworker.page.getByLabel('Sista dag').fill(until);
  await caseworker.page.getByRole('button', { name: 'Lägg spärr' }).click();
  const holds = caseworker.page.getByRole('table', { name: 'Spärrar på ärendet' });
  await holds.getByText('Gäller', { exact: true }).waitFor();
  await checkAccessibility(caseworker.page, 'holds page with an active hold');

  // While it holds, the case is not in the report; once ended, it is again.
  for (let attempt = 0; ; attempt += 1) {
    if (!(await report()).includes(short)) break;
    assert.ok(attempt < 50, 'the held case stayed in the report');
    await page.waitForTimeout(200);
  }
  await caseworker.page.getByRole('button', { name: 'Avsluta spärren' }).click();
  await holds.getByText('Avslutad', { exact: false }).waitFor();
  for (let attempt = 0; ; attempt += 1) {
    if ((await report()).includes(short)) break;
    assert.ok(attempt < 50, 'the case did not come back after its hold ended');
    await page.waitForTimeout(200);
  }
  await caseworker.done();
  await officer.done();
});

test('after the idle timeout the next page says the session has expired', async () => {
  const caseworker = await User.signIn(browser, shortSession, 'handlaggare-bollnas');
  assert.equal(new URL(caseworker.page.url()).pathname, '/utkast');
  // The timeout itself is what is tested: nothing but waiting past it makes a session idle.
  await caseworker.page.waitForTimeout(shortSession.idleMs + 1_000);
  await caseworker.page.getByRole('navigation', { name: 'Huvudmeny' }).getByRole('link', { name: 'Nytt utkast' }).click();
  await caseworker.page.getByRole('heading', { name: 'Sessionen har gått ut' }).waitFor();
  assert.match(await caseworker.page.getByRole('alert').innerText(), /Logga in igen/);
  await checkAccessibility(caseworker.page, 'session-expired page');
  await caseworker.page.getByRole('link', { name: 'Logga in' }).click();
  await caseworker.page.waitForURL(/\/logga-in$/);
  await caseworker.done();
});
