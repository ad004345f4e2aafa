import { expect, request as http, test, type APIRequestContext } from "@playwright/test";
import { createToken, op, waitForHydration, watchConsole } from "./helpers";

/** Claims what is ready in `queue` as a worker would, and returns the tasks by name. */
async function claim(api: APIRequestContext, token: string, queue: string) {
  const claimed = await op(api, token, "claimTasks", { worker_id: "e2e-recovery", queues: [queue], max_tasks: 2 });
  expect(claimed.status).toBe(200);
  const byName: Record<string, { task_id: string; lease_token: string }> = {};
  for (const task of claimed.body.data.tasks) byName[task.name] = task;
  return byName;
}

async function finish(api: APIRequestContext, token: string, task: { task_id: string; lease_token: string }, code?: string) {
  const entry = { task_id: task.task_id, lease_token: task.lease_token, ...(code ? { code, message: `${code} in task reading /srv/feeds/42.xml` } : {}) };
  const done = await op(api, token, code ? "failTasks" : "completeTasks", { worker_id: "e2e-recovery", tasks: [entry] });
  expect(done.status).toBe(200);
}

test("an operator opens a failed job's record, sees the dry-run set, recovers it, and the job completes on the page", async ({ page }) => {
  const token = await createToken(page, "operator");
  const problems = watchConsole(page);
  const api = await http.newContext({
    baseURL: test.info().project.use.baseURL,
    storageState: { cookies: [], origins: [] },
  });
  const queue = `e2e-recovery-${Date.now()}`;
  const created = await op(api, token, "createJob", {
    product_id: "e2e", sending_group_id: "recovery", driver: "dispatched", queue, max_parallel_tasks: 2,
    // PARSE_ERROR is not in the list: it fails the job at once, with attempts left to recover.
    retry_config: { max_attempts: 3, retry_interval: 0, retry_on_errors: ["TIMEOUT"] },
    tasks: [
      { name: "fetch" },
      { name: "parse", depends_on: ["fetch"] },
      { name: "images", depends_on: ["fetch"] },
      { name: "publish", depends_on: ["parse", "images"] },
    ],
  });
  expect(created.status).toBe(201);
  const jobId: string = created.body.data.id;
  await finish(api, token, (await claim(api, token, queue)).fetch);
  const second = await claim(api, token, queue);
  await finish(api, token, second.images);
  await finish(api, token, second.parse, "PARSE_ERROR");

  // The job's failure is on the recovery page; its record opens from there.
  await page.goto(`/recovery?job=${jobId}`);
  await waitForHydration(page);
  await expect(page.getByTestId("patterns")).toContainText("PARSE_ERROR");
  await expect(page.getByTestId("patterns")).toContainText("<path>");
  await page.screenshot({ path: "test-results/screens/recovery.png", fullPage: true });
  const row = page.getByTestId("records").locator("tbody tr").first();
  await expect(row.locator("[data-status]")).toHaveAttribute("data-status", "failed");
  await row.locator("td.run-message a").click();
  await expect(page).toHaveURL(/\/recovery\/[0-9a-f-]{36}$/);
  await waitForHydration(page);

  // The dry run: the failed task and its downstream, drawn on the graph; the rest kept.
  const graph = page.getByTestId("task-graph");
  await expect(graph.locator('[data-task="parse"]')).toHaveAttribute("data-rerun", "failed");
  await expect(graph.locator('[data-task="publish"]')).toHaveAttribute("data-rerun", "downstream");
  for (const kept of ["fetch", "images"]) {
    await expect(graph.locator(`[data-task="${kept}"]`)).toHaveAttribute("data-status", "completed");
    await expect(graph.locator(`[data-task="${kept}"]`)).not.toHaveAttribute("data-rerun", /.*/);
  }
  await expect(page.getByTestId("rerun-set")).toContainText("parse");
  await expect(page.getByTestId("rerun-set")).toContainText("publish");
  await expect(page.getByTestId("record-job-status").locator("[data-status]")).toHaveAttribute("data-status", "failed");
  await page.screenshot({ path: "test-results/screens/error-record.png", fullPage: true });

  await page.locator('[data-action="recover"]').click();
  await expect(page.getByTestId("record-status").locator("[data-status]")).toHaveAttribute("data-status", "in_progress");
  await expect(page.getByTestId("attempts")).toContainText("parse, publish");
  await waitForHydration(page);
  // From here on the page must not load again: the live region shows the work finishing.
  await page.evaluate(() => ((window as any).__sameDocument = true));

  await finish(api, token, (await claim(api, token, queue)).parse);
  await finish(api, token, (await claim(api, token, queue)).publish);
  await expect(page.getByTestId("record-job-status").locator("[data-status]")).toHaveAttribute("data-status", "completed");
  await expect(page.getByTestId("record-status").locator("[data-status]")).toHaveAttribute("data-status", "recovered");
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
  await expect(page.getByTestId("recover-form")).toHaveCount(0);
  await page.screenshot({ path: "test-results/screens/error-record-recovered.png", fullPage: true });
  expect(problems).toEqual([]);
});
