import { expect, type APIRequestContext, type Page } from "@playwright/test";

export const secret = process.env.TC_PORTAL_WEBHOOK_SECRET ?? "";

/** Posts a job report the way a script does. */
export async function report(
  request: APIRequestContext,
  jobKey: string,
  status: "success" | "error",
  message: string | null = null,
  finishedAt: Date = new Date(),
) {
  const response = await request.post("/api/monitor/job-report", {
    headers: { "X-TC-Portal-Webhook-Secret": secret },
    data: {
      job_key: jobKey,
      title: `E2E ${jobKey}`,
      status,
      finished_at: finishedAt.toISOString(),
      duration_ms: 1200,
      message,
    },
  });
  expect(response.status()).toBe(200);
}

/** Collects console errors and uncaught exceptions of a page. */
export function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(msg.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
  return problems;
}

/** Waits until the WASM bundle has hydrated the page (the language button answers). */
export async function waitForHydration(page: Page) {
  await page.waitForFunction(() => (window as any).__jobdeckHydrated === true);
}

export async function badgeCount(page: Page): Promise<number> {
  const badge = page.getByTestId("error-badge");
  return (await badge.count()) === 0 ? 0 : Number(await badge.textContent());
}

export async function expectNoSidewaysScroll(page: Page) {
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow).toBeLessThanOrEqual(0);
}

/** A new token of `role`, made on the tokens page as an admin would. */
export async function createToken(page: Page, role: "operator" | "viewer"): Promise<string> {
  await page.goto("/admin/tokens");
  await waitForHydration(page);
  const form = page.getByTestId("create-token");
  await form.locator('input[name="name"]').fill(`e2e-${role}-${Date.now()}`);
  await form.locator('select[name="role"]').selectOption(role);
  await form.getByRole("button").click();
  const shown = page.getByTestId("new-token").locator("code");
  await expect(shown).toHaveText(/^jd_/);
  return (await shown.textContent())!;
}

/** One call of the JSON APIs with a bearer token, routed as the seeds route each action. */
export async function op(request: APIRequestContext, token: string, action: string, data: object) {
  const route = ["addTasks", "updateTasks", "recordArticles", "claimTasks", "heartbeat", "completeTasks", "failTasks"].includes(action)
    ? "/task-operations"
    : ["configureRetry", "manualRecover", "analyzeErrors"].includes(action)
      ? "/error-operations"
      : "/job-operations";
  const response = await request.post(route, {
    headers: { Authorization: `Bearer ${token}` },
    data: { action, data },
  });
  return { status: response.status(), body: await response.json() };
}
