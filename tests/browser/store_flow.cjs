// The shop and invoices end to end in a real browser through nginx: a signed-in shopper filters
// "fits my vehicle", adds two items, pays on Stripe's (fake) hosted page, and the order shows paid
// once the webhook has come back; then the client pays a work-order invoice from the garage.
//
// Run by tests/tests/browser_store.rs with: NODE_MODULES, CHROMIUM, PUBLIC_URL, MAIL_DIR, EMAIL,
// SHOTS. Prints one JSON line: {"order_url"}.
'use strict';
const { env, snap, expectText, waitForText, signIn, launch, run } = require('./lib.cjs');

run(async () => {
  const PUBLIC = env('PUBLIC_URL');
  const browser = await launch();
  try {
    const page = await (await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true })).newPage();
    // The client already has a Segway-Ninebot in the garage (set up by the test).
    await signIn(page, PUBLIC, env('EMAIL'));

    await page.goto(`${PUBLIC}/shop`);
    await expectText(page, '#products', 'XT90');
    await snap(page, 'shop-all');
    await page.click('#fits-link');
    await expectText(page, '#fits-on', 'Showing parts that fit');
    const names = await page.textContent('#products');
    if (!names.includes('10 × 2.5 inner tube')) throw new Error('the tube for the scooter is missing');
    if (names.includes('EUC phone mount')) throw new Error('an EUC part shows for a scooter');
    await snap(page, 'shop-fits-my-vehicle');

    for (const product of ['10 × 2.5 inner tube', 'XT90 anti-spark connector pair']) {
      await page.click(`.card:has-text("${product}") button:has-text("Add to cart")`);
      await page.waitForURL('**/shop/cart');
      await page.goto(`${PUBLIC}/shop?fits=1`);
    }
    await page.goto(`${PUBLIC}/shop/cart`);
    await expectText(page, '#cart-lines', 'inner tube');
    await expectText(page, '#cart-lines', 'XT90');
    await snap(page, 'cart-two-items');
    await page.click('button:has-text("Pay with card")');
    await page.waitForURL('**/pay/cs_**');
    await snap(page, 'stripe-hosted-page');
    await page.click('button:has-text("Pay")');
    await page.waitForURL('**/shop/orders/**');
    await waitForText(page, '#order-status', 'Paid');
    const orderUrl = page.url().split('?')[0];
    await snap(page, 'order-paid');

    // The work-order invoice, from the garage.
    await page.goto(`${PUBLIC}/garage`);
    // (The paid order has its own invoice in the list too: open the job's.)
    await page.click(`a[href="/garage/invoices/${env('INVOICE_ID')}"]`);
    await expectText(page, '#invoice-status', 'Waiting for payment');
    await snap(page, 'invoice-open');
    await page.click('#pay');
    await page.waitForURL('**/pay/cs_**');
    await page.click('button:has-text("Pay")');
    await page.waitForURL('**/garage/invoices/**');
    await waitForText(page, '#invoice-status', 'Paid');
    await snap(page, 'invoice-paid');

    console.log(JSON.stringify({ order_url: orderUrl }));
  } finally {
    await browser.close();
  }
});
