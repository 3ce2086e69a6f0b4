// The client garage end to end in a real browser (Debian Chromium driven by playwright-core),
// through nginx: a new client signs in with the link read from the SMTP peer, adds a Begode
// electric unicycle and an "other" make, books Tuesday Morning and sees the job; the owner signs
// in with password + authenticator app (set up on the first sign-in), invites a tech by email;
// the tech accepts, signs in and moves the job to diagnosing, then ready; the status link shows
// the new state.
//
// Run by tests/tests/browser.rs with: NODE_MODULES, CHROMIUM, PUBLIC_URL, TECH_URL, MAIL_DIR,
// EMAIL, PHONE, OWNER_EMAIL, OWNER_PASSWORD, TECH_EMAIL, TECH_PASSWORD, SHOTS.
// Prints one JSON line: {"job_url", "status_url"}.
'use strict';
const { env, snap, expectText, mailedMatch, mailedLink, totp, launch } = require('./lib.cjs');

const PUBLIC = env('PUBLIC_URL');
const TECH = env('TECH_URL');
const EMAIL = env('EMAIL');

(async () => {
  const browser = await launch();
  try {
    // ---- the client, on a phone-sized screen ----
    const client = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const page = await client.newPage();
    await page.goto(`${PUBLIC}/`);
    await expectText(page, 'h1', 'We fix e-bikes');
    await snap(page, 'home');

    await page.click('text=Sign in');
    await page.fill('#email', EMAIL);
    await page.click('button:has-text("Email me a sign-in link")');
    await expectText(page, 'h1', 'Check your email');
    await snap(page, 'check-email');

    const link = await mailedLink(EMAIL);
    await page.goto(link);
    await snap(page, 'link-landing');
    await page.click('#finish-sign-in');
    await page.waitForURL('**/garage/profile?welcome=1');
    await page.fill('#name', 'Ada Rider');
    await page.fill('#phone', env('PHONE'));
    await page.selectOption('#contact_preference', 'sms');
    await page.check('input[name=sms_consent]');
    await snap(page, 'profile');
    await page.click('button:has-text("Save")');
    await page.waitForURL('**/garage?saved=profile');

    // A Begode electric unicycle from the dropdowns.
    await page.click('text=Add a vehicle');
    await page.selectOption('#category', 'electric_unicycle');
    const begode = await page.$$eval('#model_id option', (os) => os.filter((o) => o.textContent.startsWith('Begode ')).map((o) => o.value));
    if (begode.length === 0) throw new Error('no Begode models in the dropdown');
    await page.selectOption('#model_id', begode[0]);
    await page.fill('#nickname', 'Big Wheel');
    await page.selectOption('#battery_format', '21700');
    await page.fill('#voltage_class', '134');
    await snap(page, 'vehicle-begode');
    await page.click('button:has-text("Save vehicle")');
    await page.waitForURL('**/garage?saved=vehicle');

    // And a make that isn't in the catalog.
    await page.click('text=Add a vehicle');
    await page.selectOption('#category', 'e_scooter');
    await page.fill('#other_make', 'Wolf Warrior');
    await page.fill('#other_model', 'King GT');
    await page.click('button:has-text("Save vehicle")');
    await page.waitForURL('**/garage?saved=vehicle');
    await expectText(page, '#vehicles', 'Big Wheel (Begode');
    await expectText(page, '#vehicles', 'Wolf Warrior King GT');
    await snap(page, 'garage-two-vehicles');

    // Book Tuesday Morning.
    await page.click('#book');
    const bigWheel = await page.$$eval('#vehicle_id option', (os) => os.filter((o) => o.textContent.startsWith('Big Wheel')).map((o) => o.value));
    await page.selectOption('#vehicle_id', bigWheel[0]);
    await page.check('input[name=service][value=battery]');
    await page.fill('#problem', 'Cuts out above 25 mph; pack looks a little swollen.');
    await page.check('input[name=safety_flag]');
    const slots = await page.$$eval('input[name=slot]', (rs) => rs.map((r) => r.value));
    const tuesdayMorning = slots.find((v) => {
      const [date, window] = v.split('|');
      return window === 'morning' && new Date(`${date}T12:00:00Z`).getUTCDay() === 2;
    });
    if (!tuesdayMorning) throw new Error(`no Tuesday morning slot among ${slots.join(', ')}`);
    await page.check(`input[name=slot][value="${tuesdayMorning}"]`);
    await snap(page, 'book-tuesday-morning');
    await page.click('#confirm-booking');
    await page.waitForURL('**/garage/jobs/*?booked=1');
    await expectText(page, '#job-status', 'Booked in');
    const jobUrl = page.url().split('?')[0];
    const statusUrl = await page.getAttribute('#status-link', 'href');
    await snap(page, 'job-booked');
    await page.goto(`${PUBLIC}/garage`);
    await expectText(page, '#jobs', 'Big Wheel');
    await snap(page, 'garage-with-job');

    // ---- a staff member, on a tablet, on the tech host ----
    // ---- the owner (made with `portal create-owner`) signs in: password, then setting up the
    // authenticator app on the first sign-in ----
    const ownerCtx = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    const owner = await ownerCtx.newPage();
    const ownerSignIn = async () => {
      await owner.goto(`${TECH}/signin`);
      await owner.fill('#email', env('OWNER_EMAIL'));
      await owner.fill('#password', env('OWNER_PASSWORD'));
      await owner.click('#account-form button');
    };
    await ownerSignIn();
    await owner.waitForURL('**/signin/enroll');
    const key = (await owner.textContent('#totp-key')).replace(/\s+/g, '');
    await snap(owner, 'owner-sets-up-authenticator');
    await owner.fill('#code', totp(key));
    await owner.click('#enroll-form button');
    await expectText(owner, 'h1', 'Save your recovery codes');
    await snap(owner, 'owner-recovery-codes');
    await owner.click('#continue');
    await owner.waitForURL('**/jobs');
    // Signed out and back in: password + the app's next code.
    await owner.click('header form button');
    await owner.waitForURL('**/signin');
    await ownerSignIn();
    await owner.waitForURL('**/signin/code');
    await owner.fill('#code', totp(key, 30));
    await owner.click('#code-form button');
    await owner.waitForURL('**/jobs');
    await snap(owner, 'owner-board');

    // ---- the owner invites a tech ----
    await owner.goto(`${TECH}/staff`);
    await owner.fill('#invite-name', 'Marcus');
    await owner.fill('#invite-email', env('TECH_EMAIL'));
    await owner.selectOption('#invite-role', 'tech');
    await owner.click('#invite-form button');
    await expectText(owner, '#notice', 'Invite sent');
    await snap(owner, 'owner-invited-tech');

    // ---- the tech accepts the invite, signs in and moves the job ----
    const invite = await mailedMatch(env('TECH_EMAIL'), 'invited', /https?:\/\/\S+\/invite\/[A-Za-z0-9_-]+/);
    const staff = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    const desk = await staff.newPage();
    await desk.goto(invite);
    await snap(desk, 'tech-invite');
    await desk.fill('#password', env('TECH_PASSWORD'));
    await desk.fill('#confirm', env('TECH_PASSWORD'));
    await desk.click('#accept-form button');
    await desk.waitForURL('**/signin?welcome=1');
    await desk.fill('#email', env('TECH_EMAIL'));
    await desk.fill('#password', env('TECH_PASSWORD'));
    await desk.click('#account-form button');
    await desk.waitForURL('**/jobs');
    await snap(desk, 'staff-board');
    const jobId = jobUrl.split('/').pop();
    await desk.click(`a[href$="/jobs/${jobId}"]`);
    for (const to of ['diagnosing', 'ready']) {
      await desk.click(`form:has(input[name=to_status][value=${to}]) button`);
      await desk.waitForURL(`**/jobs/${jobId}`);
      await snap(desk, `staff-moved-${to}`);
    }
    // A tech can't open the owner's pages.
    const denied = await desk.goto(`${TECH}/staff`);
    if (denied.status() !== 403) throw new Error(`a tech opened /staff: ${denied.status()}`);

    // ---- the client follows the status link (no sign-in needed) ----
    const anyone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const status = await anyone.newPage();
    await status.goto(statusUrl);
    await expectText(status, '#job-status', 'Ready for pick-up');
    await expectText(status, '#timeline', 'Diagnosing');
    await snap(status, 'status-link-ready');

    console.log(JSON.stringify({ job_url: jobUrl, status_url: statusUrl }));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
