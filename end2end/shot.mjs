// Screenshots for looking at pages by hand: node shot.mjs <base-url> <bearer-token|-> "path|name|width[|click-selector|top]"...
// writes /tmp/<name>.png (the whole page unless "top"), and prints console errors and the page width.
import { chromium } from "@playwright/test";
const [, , base, token, ...paths] = process.argv;
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"] });
for (const spec of paths) {
  const [path, name, width, click, top] = spec.split("|");
  const context = await browser.newContext({ viewport: { width: Number(width || 1280), height: 800 }, extraHTTPHeaders: token === "-" ? {} : { Authorization: `Bearer ${token}` } });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(base + path);
  await page.waitForFunction(() => window.__jobdeckHydrated === true, null, { timeout: 10000 }).catch(() => problems.push("not hydrated"));
  if (click && click !== "-") await page.locator(click).click();
  const sw = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.screenshot({ path: `/tmp/${name}.png`, fullPage: !top });
  console.log(name, "scrollWidth", sw);
  console.log(name, problems.length ? problems : "clean");
  await context.close();
}
await browser.close();
