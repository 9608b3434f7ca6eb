// Puppeteer must never download its own browser: the machines reach no browser CDN.
// The product drives Debian's Chromium (see README, "Chromium").
module.exports = { skipDownload: true };
