// Shared by the browser flows: environment, Chromium launch, screenshots, waiting for text,
// and reading the sign-in link from the SMTP peer's mail folder.
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require(path.join(process.env.NODE_MODULES, 'playwright-core'));

function env(k) {
  const v = process.env[k];
  if (!v) throw new Error(`missing env ${k}`);
  return v;
}

let shot = 0;
async function snap(page, name) {
  shot += 1;
  await page.screenshot({ path: path.join(env('SHOTS'), `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
}

async function expectText(page, selector, text) {
  const got = await page.textContent(selector);
  if (!got || !got.includes(text)) throw new Error(`${selector}: expected "${text}", got "${got}" on ${page.url()}`);
}

/// Reloads until `selector` contains `text` (state that a webhook changes behind the page).
async function waitForText(page, selector, text, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await page.textContent(selector).catch(() => null);
    if (got && got.includes(text)) return;
    if (Date.now() > deadline) throw new Error(`${selector} never showed "${text}" (last: "${got}") on ${page.url()}`);
    await new Promise((r) => setTimeout(r, 300));
    await page.reload();
  }
}

/// The first match of `re` in the newest mail to `email` whose subject contains `subject`.
async function mailedMatch(email, subject, re) {
  const dir = env('MAIL_DIR');
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort().reverse()) {
      const m = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
      if (m.to.includes(email) && m.subject.includes(subject)) {
        const found = m.text.match(re);
        if (found) return found[0];
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no "${subject}" mail for ${email}`);
}

async function mailedLink(email) {
  return mailedMatch(email, 'sign-in link', /https?:\/\/\S+\/signin\/link\?token=[A-Za-z0-9_-]+/);
}

/// The RFC 6238 code an authenticator app shows for a base32 key, `offset` seconds from now.
function totp(keyB32, offset = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const bytes = [];
  for (const ch of keyB32.replace(/[\s=]/g, '').toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  const step = Math.floor((Date.now() / 1000 + offset) / 30);
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = require('crypto').createHmac('sha1', Buffer.from(bytes)).update(msg).digest();
  const at = mac[mac.length - 1] & 0xf;
  const n = ((mac[at] & 0x7f) << 24) | (mac[at + 1] << 16) | (mac[at + 2] << 8) | mac[at + 3];
  return String(n % 1000000).padStart(6, '0');
}

/// Signs `email` in through the public site's magic link; returns where it landed.
async function signIn(page, publicUrl, email) {
  await page.goto(`${publicUrl}/signin`);
  await page.fill('#email', email);
  await page.click('button:has-text("Email me a sign-in link")');
  await expectText(page, 'h1', 'Check your email');
  await page.goto(await mailedLink(email));
  await page.click('#finish-sign-in');
  await page.waitForLoadState();
  return page.url();
}

async function launch() {
  return chromium.launch({
    executablePath: env('CHROMIUM'),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

function run(main) {
  main().catch((e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  });
}

module.exports = { env, snap, expectText, waitForText, mailedMatch, mailedLink, totp, signIn, launch, run };
