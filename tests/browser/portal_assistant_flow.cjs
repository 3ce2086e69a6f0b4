// The techs' assistant in a real browser: a signed-in tech opens the assistant from the portal's
// bar, asks about a job by its id and the reply streams in (no page load) with the job's real
// status and a link to the job's portal page.
//
// Run by tests/tests/portal_assistant.rs with: NODE_MODULES, CHROMIUM, TECH_URL, STAFF_SESSION,
// JOB_ID, STATUS_LABEL, SHOTS. Prints one JSON line: {"link","content_type"}.
'use strict';
const { env, snap, expectText, launch, run } = require('./lib.cjs');

run(async () => {
  const TECH = env('TECH_URL');
  const JOB = env('JOB_ID');
  const browser = await launch();
  try {
    const ctx = await browser.newContext({ viewport: { width: 1024, height: 800 } });
    await ctx.addCookies([{ name: 'jjt_session', value: env('STAFF_SESSION'), url: TECH }]);
    const page = await ctx.newPage();
    await page.goto(`${TECH}/jobs`);
    await page.click('header.bar a[href="/assistant"]');
    await page.waitForURL('**/assistant');
    await snap(page, 'portal-assistant-open');

    // A marker that only survives if the page is not reloaded: the reply must stream in.
    await page.evaluate(() => { window.__stayed = true; });
    await page.fill('#chat-text', `what's the status of ${JOB}?`);
    const streamed = page.waitForResponse((r) => r.url().endsWith('/assistant/stream'));
    await page.click('#chat-form button');
    const resp = await streamed;
    const contentType = resp.headers()['content-type'] || '';
    if (!contentType.startsWith('text/event-stream')) throw new Error(`stream answered ${contentType}`);
    await page.waitForSelector('#latest .sources a', { timeout: 20000 });
    if (!(await page.evaluate(() => window.__stayed === true))) throw new Error('the page reloaded instead of streaming');
    await expectText(page, '#latest', env('STATUS_LABEL'));
    await expectText(page, '#latest', JOB);
    const link = await page.getAttribute('#latest .sources a', 'href');
    if (link !== `/jobs/${JOB}`) throw new Error(`the source links to ${link}`);
    await snap(page, 'portal-assistant-streamed-reply');

    // The link opens the job on the board.
    await page.click('#latest .sources a');
    await page.waitForURL(`**/jobs/${JOB}`);
    await snap(page, 'job-from-the-assistant');
    console.log(JSON.stringify({ link, content_type: contentType }));
  } finally {
    await browser.close();
  }
});
