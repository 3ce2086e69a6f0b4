// The knowledge base in a real browser: a signed-in tech opens the knowledge base, goes to "Add a
// document", picks a Markdown file from disk, makes it client-visible and sends the form (no
// JavaScript on the page), lands on the new document and finds it in the list.
//
// Run by tests/tests/portal_kb.rs with: NODE_MODULES, CHROMIUM, TECH_URL, SESSION, SHOTS.
// Prints one JSON line: {"doc"}.
'use strict';
const { env, snap, expectText, launch, run } = require('./lib.cjs');

run(async () => {
  const TECH = env('TECH_URL');
  const browser = await launch();
  try {
    const ctx = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    await ctx.addCookies([{ name: 'jjt_session', value: env('SESSION'), url: TECH }]);
    const page = await ctx.newPage();
    await page.goto(`${TECH}/kb`);
    await expectText(page, 'h1', 'Knowledge base');
    await snap(page, 'kb-empty');
    await page.click('#upload-link');
    await page.waitForURL('**/kb/upload');
    await page.fill('#title', 'Brake bleeding');
    await page.check('#vis-client');
    await page.setInputFiles('#file', {
      name: 'brake-bleeding.md',
      mimeType: 'text/markdown',
      buffer: Buffer.from('# Brake bleeding\n\n## Hydraulic brakes\n\nOpen the wallabybleed valve a quarter turn and pump slowly.\n'),
    });
    await snap(page, 'kb-upload-form');
    await Promise.all([page.waitForURL('**/kb/doc_*'), page.click('#upload-submit')]);
    await expectText(page, '#notice', 'Added to the knowledge base');
    await expectText(page, '#doc-title', 'Brake bleeding');
    await expectText(page, '#doc-visibility', 'clients and staff');
    await expectText(page, '#doc-text', 'wallabybleed');
    const doc = new URL(page.url()).pathname.split('/').pop();
    await snap(page, 'kb-document');
    await page.click('a:has-text("← Knowledge base")');
    await page.waitForURL('**/kb');
    await expectText(page, `tr[data-document="${doc}"]`, 'Brake bleeding');
    await snap(page, 'kb-listed');
    console.log(JSON.stringify({ doc }));
  } finally {
    await browser.close();
  }
});
