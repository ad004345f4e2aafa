import { expect, test } from "@playwright/test";
import { badgeCount, expectNoSidewaysScroll, report, waitForHydration, watchConsole } from "./helpers";

test("a failing job is listed first and counted, and clears without a reload", async ({ page, request }) => {
  const problems = watchConsole(page);
  const jobKey = `e2e-fail-${Date.now()}`;
  await report(request, `e2e-ok-${Date.now()}`, "success", "処理完了");

  await page.goto("/incidents");
  await waitForHydration(page);
  const before = await badgeCount(page);

  // The failing report is an hour old and a healthy job reports after it, so only "failing
  // first" (not "newest first" or "last sent") puts it at the top.
  const hourAgo = new Date(Date.now() - 3_600_000);
  await report(request, jobKey, "error", "在庫CSVが見つかりません", hourAgo);
  await report(request, `e2e-ok-later-${Date.now()}`, "success", "後から成功");
  await page.reload();
  await waitForHydration(page);
  const first = page.locator("article.job-card").first();
  await expect(first).toHaveAttribute("data-job-key", jobKey);
  await expect(first).toHaveClass(/failing/);
  await expect(first).toContainText("在庫CSVが見つかりません");
  await expect(page.getByTestId("error-badge")).toHaveText(String(before + 1));
  await page.screenshot({ path: "test-results/screens/incidents.png", fullPage: true });

  // The job recovers: the next 5 s poll moves it to the healthy group and lowers the badge.
  await report(request, jobKey, "success", "復旧しました");
  await expect(page.locator(`article.job-card[data-job-key="${jobKey}"]`)).not.toHaveClass(/failing/, {
    timeout: 12_000,
  });
  expect(await badgeCount(page)).toBe(before);
  expect(problems).toEqual([]);
});

test("the language switch flips the page between Japanese and English", async ({ page }) => {
  const problems = watchConsole(page);
  await page.goto("/incidents");
  await expect(page.locator("html")).toHaveAttribute("lang", "ja");
  await expect(page.locator("h1")).toHaveText("障害情報");
  await waitForHydration(page);

  await page.getByRole("button", { name: "Switch to English" }).click();
  await expect(page.locator("h1")).toHaveText("Incidents");
  await expect(page.locator("html")).toHaveAttribute("lang", "en");
  // The choice is kept across a reload.
  await page.reload();
  await expect(page.locator("h1")).toHaveText("Incidents");
  await waitForHydration(page);
  await page.getByRole("button", { name: "日本語に切り替える" }).click();
  await expect(page.locator("h1")).toHaveText("障害情報");
  expect(problems).toEqual([]);
});

test.describe("a viewer in Tokyo", () => {
  test.use({ timezoneId: "Asia/Tokyo" });
  test("sees the exact time in their own zone on hover", async ({ page, request }) => {
    const jobKey = `e2e-tz-${Date.now()}`;
    await report(request, jobKey, "success");
    await page.goto("/incidents");
    const time = page.locator(`article.job-card[data-job-key="${jobKey}"] time`);
    await expect(time).toHaveText("たった今");
    await waitForHydration(page);
    await expect(time).toHaveAttribute("title", /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(UTC\+09:00\)$/);
  });
});

test.describe("an English browser", () => {
  test.use({ locale: "en-US", extraHTTPHeaders: { "Accept-Language": "en-US,en;q=0.9" } });
  test("gets English from Accept-Language", async ({ page }) => {
    await page.goto("/incidents");
    await expect(page.locator("html")).toHaveAttribute("lang", "en");
    await expect(page.locator("h1")).toHaveText("Incidents");
  });
});

test.describe("a 400-pixel window", () => {
  test.use({ viewport: { width: 400, height: 800 } });
  test("shows incidents and a job page without sideways scrolling", async ({ page, request }) => {
    const problems = watchConsole(page);
    const jobKey = `e2e-narrow-${Date.now()}-with-a-rather-long-key-that-must-wrap`;
    await report(request, jobKey, "error", "x".repeat(300));
    await report(request, jobKey, "success", "ok");
    await page.goto("/incidents");
    await waitForHydration(page);
    await expectNoSidewaysScroll(page);
    await page.screenshot({ path: "test-results/screens/incidents-400.png", fullPage: true });

    await page.locator(`article.job-card[data-job-key="${jobKey}"] a.job-title`).click();
    await expect(page.locator("h1")).toHaveText(`E2E ${jobKey}`);
    await expect(page.locator(".chart svg")).toBeVisible();
    await expect(page.locator("li.run")).toHaveCount(2);
    await expectNoSidewaysScroll(page);
    await page.screenshot({ path: "test-results/screens/job-400.png", fullPage: true });
    expect(problems).toEqual([]);
  });
});

test("a job page shows its runs and chart, and an unknown key says so", async ({ page, request }) => {
  const problems = watchConsole(page);
  const jobKey = `e2e-detail/${Date.now()} 日本語`;
  await report(request, jobKey, "success", "一回目");
  await report(request, jobKey, "error", "二回目");
  await page.goto("/incidents");
  await waitForHydration(page);
  await page.locator("article.job-card", { hasText: jobKey }).locator("a.job-title").click();
  await expect(page.locator("h1")).toHaveText(`E2E ${jobKey}`);
  await expect(page.locator("li.run")).toHaveCount(2);
  await expect(page.locator(".chart svg circle")).toHaveCount(2);
  await page.screenshot({ path: "test-results/screens/job.png", fullPage: true });

  await page.goto("/incidents/no-such-job");
  await expect(page.locator("h1")).toHaveText("このキーのジョブはありません");
  expect(problems).toEqual([]);
});
