import { expect, test } from "@playwright/test";
import { badgeCount, report, waitForHydration, watchConsole } from "./helpers";

test("a scheduled script misses its run: the alert shows and counts, and an operator acknowledges it", async ({
  page,
  request,
}) => {
  // A every-minute schedule with no grace misses within a minute, judged every 5 s.
  test.setTimeout(150_000);
  const problems = watchConsole(page);
  const jobKey = `e2e-missed-${Date.now()}`;
  await report(request, jobKey, "success", "定期実行");

  await page.goto(`/incidents/${jobKey}`);
  await waitForHydration(page);
  await expect(page.getByTestId("no-schedule")).toBeVisible();
  const form = page.getByTestId("schedule-form");
  await form.locator('input[name="cron"]').fill("* * * * *");
  await form.locator('input[name="timezone"]').fill("UTC");
  await form.locator('input[name="grace_minutes"]').fill("0");
  await form.locator('button[type="submit"]').click();
  await expect(page.getByTestId("next-expected")).toContainText("UTC");
  await page.screenshot({ path: "test-results/screens/script-schedule.png", fullPage: true });

  await page.goto("/incidents");
  await waitForHydration(page);
  const before = await badgeCount(page);
  const alert = page.locator(`[data-testid="alert"][data-kind="missed_run"][data-subject="script:${jobKey}"]`).first();
  // The live region refreshes every 5 s: the alert appears without a reload.
  await expect(alert).toBeVisible({ timeout: 100_000 });
  await expect(alert).toHaveAttribute("data-state", "firing");
  await expect(alert).toContainText("E2E " + jobKey);
  // Two rules watch it (the built-in missed-run rule, and none other): one subject, one count.
  await expect.poll(() => badgeCount(page), { timeout: 12_000 }).toBe(before + 1);
  await page.screenshot({ path: "test-results/screens/incidents-alerts.png", fullPage: true });

  await alert.getByTestId("acknowledge").click();
  const acknowledged = page.locator(`[data-testid="alert"][data-subject="script:${jobKey}"]`).first();
  await expect(acknowledged.getByTestId("acknowledged")).toBeVisible();
  await expect(acknowledged.getByTestId("acknowledge")).toHaveCount(0);
  expect(await badgeCount(page)).toBe(before);

  await page.goto("/alerts");
  await waitForHydration(page);
  await expect(page.getByTestId("alert-rules")).toContainText("missed_run");
  await page.screenshot({ path: "test-results/screens/alert-settings.png", fullPage: true });
  expect(problems).toEqual([]);
});
