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

test("an operator manages a channel (its secret shown once), a rule and a silence on /alerts", async ({ page }) => {
  const problems = watchConsole(page);
  const stamp = Date.now();
  const channel = `e2e-hook-${stamp}`;
  await page.goto("/alerts");
  await waitForHydration(page);

  // The channel form is the SecretForm island: the signing secret appears once, in place.
  const newChannel = page.getByTestId("new-channel");
  await newChannel.locator('input[name="name"]').fill(channel);
  await newChannel.locator('select[name="kind"]').selectOption("webhook");
  await newChannel.locator('input[name="target"]').fill("http://127.0.0.1:9/closed");
  await newChannel.locator('select[name="language"]').selectOption("en");
  await newChannel.locator('button[type="submit"]').click();
  await expect(page.getByTestId("channel-secret")).toContainText("whsec_");
  await page.screenshot({ path: "test-results/screens/alert-channel-secret.png", fullPage: true });
  await page.reload();
  await expect(page.locator(`[data-channel="${channel}"]`)).toBeVisible();
  await expect(page.getByTestId("channel-secret")).toHaveCount(0);
  expect(await page.content()).not.toContain("whsec_");

  // Send test to a closed port: not delivered, and the page says why.
  await page.locator(`[data-channel="${channel}"]`).getByTestId("send-test").click();
  await expect(page.getByTestId("form-error")).toContainText("not delivered");

  // A rule on that channel; a rule whose params are not JSON is refused by name.
  const rule = `e2e-rule-${stamp}`;
  const form = page.getByTestId("new-rule");
  await form.locator('input[name="name"]').fill(rule);
  await form.locator('select[name="kind"]').selectOption("failure_rate");
  await form.locator('select[name="scope_kind"]').selectOption("job_kind");
  await form.locator('input[name="scope_value"]').fill("script");
  await form.locator('input[name="params"]').fill("{not json");
  await form.locator('button[type="submit"]').click();
  await expect(page.getByTestId("form-error")).toContainText("params");
  await expect(page.locator(`[data-rule="${rule}"]`)).toHaveCount(0);
  await form.locator('input[name="name"]').fill(rule);
  await form.locator('select[name="kind"]').selectOption("failure_rate");
  await form.locator('select[name="scope_kind"]').selectOption("job_kind");
  await form.locator('input[name="scope_value"]').fill("script");
  await form.locator('input[name="params"]').fill('{"consecutive": 3}');
  await form.getByLabel(channel).check();
  await form.locator('button[type="submit"]').click();
  const row = page.locator(`[data-rule="${rule}"]`);
  await expect(row).toContainText('"consecutive":3');
  await expect(row).toContainText(channel);

  // A silence, listed with its reason, then ended.
  const silence = page.getByTestId("new-silence");
  await silence.locator('select[name="scope_kind"]').selectOption("job_key");
  await silence.locator('input[name="scope_value"]').fill(`e2e-silenced-${stamp}`);
  await silence.locator('input[name="reason"]').fill(`maintenance ${stamp}`);
  await silence.locator('button[type="submit"]').click();
  const silenced = page.getByTestId("alert-silences").locator("tr", { hasText: `maintenance ${stamp}` });
  await expect(silenced).toBeVisible();
  await page.screenshot({ path: "test-results/screens/alert-settings-filled.png", fullPage: true });
  await silenced.locator('button[type="submit"]').click();
  await expect(page.getByTestId("alert-silences").locator("tr", { hasText: `maintenance ${stamp}` })).toHaveCount(0);

  await row.locator('button[type="submit"]').click();
  await expect(page.locator(`[data-rule="${rule}"]`)).toHaveCount(0);
  expect(problems).toEqual([]);
});
