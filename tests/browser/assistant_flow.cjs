// "Ask the shop" in a real browser: a signed-in client opens the assistant from the garage, asks
// "where is my scooter?" and the reply streams in (no page load) with the job's real status and a
// link to the job, which opens the job page.
//
// Run by tests/tests/repairbot_web.rs with: NODE_MODULES, CHROMIUM, PUBLIC_URL, SESSION, JOB_ID,
// STATUS_LABEL, SHOTS. Prints one JSON line: {"link","content_type"}.
'use strict';
const { env, snap, expectText, launch, run } = require('./lib.cjs');

run(async () => {
  const PUBLIC = env('PUBLIC_URL');
  const JOB = env('JOB_ID');
  const browser = await launch();
  try {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    await ctx.addCookies([{ name: 'jj_session', value: env('SESSION'), url: PUBLIC }]);
    const page = await ctx.newPage();
    await page.goto(`${PUBLIC}/garage`);
    await snap(page, 'garage');
    await page.click('#ask-garage');
    await page.waitForURL('**/assistant');
    await snap(page, 'assistant-open');

    // A marker that only survives if the page is not reloaded: the reply must stream in.
    await page.evaluate(() => { window.__stayed = true; });
    await page.fill('#chat-text', 'where is my scooter?');
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
    if (link !== `/garage/jobs/${JOB}`) throw new Error(`the source links to ${link}`);
    await snap(page, 'assistant-streamed-reply');

    // The conversation is kept: a reload shows both turns (rendered by the server).
    await page.reload();
    await expectText(page, '#chat', 'where is my scooter?');
    await expectText(page, '#latest', env('STATUS_LABEL'));
    await page.click('#latest .sources a');
    await page.waitForURL(`**/garage/jobs/${JOB}`);
    await snap(page, 'job-page-from-the-link');
    console.log(JSON.stringify({ link, content_type: contentType }));
  } finally {
    await browser.close();
  }
});
