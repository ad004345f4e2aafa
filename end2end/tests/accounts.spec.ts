import { expect, test, type Page } from "@playwright/test";
import { waitForHydration, watchConsole } from "./helpers";

const adminEmail = process.env.JOBDECK_ADMIN_EMAIL ?? "";
const adminPassword = process.env.JOBDECK_ADMIN_PASSWORD ?? "";

async function signIn(page: Page, email: string, password: string) {
  await page.getByLabel(/メールアドレス|Email/).fill(email);
  await page.getByLabel(/^(パスワード|Password)$/).fill(password);
  await page.getByRole("button", { name: /ログイン|Sign in/ }).click();
}

test.describe("a visitor", () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test("is sent to the login page, signs in, lands where they asked, and signs out", async ({ page }) => {
    const problems = watchConsole(page);
    await page.goto("/admin/audit?action=login");
    await expect(page).toHaveURL(/\/login\?next=%2Fadmin%2Faudit%3Faction%3Dlogin$/);
    await waitForHydration(page);
    await page.screenshot({ path: "test-results/screens/login.png", fullPage: true });

    await signIn(page, adminEmail, "not the password");
    await expect(page.getByTestId("login-error")).toBeVisible();
    await expect(page).toHaveURL(/error=invalid/);

    await signIn(page, adminEmail, adminPassword);
    await expect(page).toHaveURL(/\/admin\/audit\?action=login$/);
    await expect(page.getByTestId("user-name")).toHaveText("admin");
    await expect(page.getByTestId("user-role")).toHaveText("admin");
    await expect(page.getByTestId("audit")).toContainText("login");
    await waitForHydration(page);
    await page.screenshot({ path: "test-results/screens/audit.png", fullPage: true });

    await page.getByTestId("sign-out").click();
    await expect(page).toHaveURL(/\/login$/);
    await page.goto("/incidents");
    await expect(page).toHaveURL(/\/login\?next=%2Fincidents$/);
    expect(problems).toEqual([]);
  });
});

test("an admin creates a token and sees it exactly once", async ({ page }) => {
  const problems = watchConsole(page);
  await page.goto("/admin/tokens");
  await waitForHydration(page);
  const name = `ci-${Date.now()}`;
  const form = page.getByTestId("create-token");
  await form.locator('input[name="name"]').fill(name);
  await form.locator('select[name="role"]').selectOption("operator");
  await form.getByRole("button").click();
  const shown = page.getByTestId("new-token").locator("code");
  await expect(shown).toHaveText(/^jd_[0-9A-Za-z]{38}$/);
  const token = (await shown.textContent())!;
  const row = page.getByTestId("tokens").locator("tr", { hasText: name });
  await expect(row).toContainText(token.slice(0, 7));
  await page.screenshot({ path: "test-results/screens/tokens.png", fullPage: true });

  // The token works as a bearer token...
  const me = await page.request.get("/api/me", { headers: { Authorization: `Bearer ${token}` } });
  expect(await me.json()).toMatchObject({ role: "operator", name });
  // ...and is never shown again.
  await page.reload();
  await expect(page.getByTestId("tokens").locator("tr", { hasText: name })).toBeVisible();
  await expect(page.getByTestId("new-token")).toHaveCount(0);
  expect(await page.content()).not.toContain(token);
  expect(problems).toEqual([]);
});

test("a viewer sees no admin pages", async ({ page, browser }) => {
  // The admin adds a viewer on the users page and reads the password shown once.
  await page.goto("/admin/users");
  await waitForHydration(page);
  const email = `viewer-${Date.now()}@example.com`;
  const form = page.getByTestId("create-user");
  await form.locator('input[name="email"]').fill(email);
  await form.locator('input[name="name"]').fill("閲覧 太郎");
  await form.locator('select[name="role"]').selectOption("viewer");
  await form.getByRole("button").click();
  const password = (await page.getByTestId("new-password").locator("code").textContent())!;
  await expect(page.getByTestId("users")).toContainText(email);
  await page.screenshot({ path: "test-results/screens/users.png", fullPage: true });

  const context = await browser.newContext({ storageState: { cookies: [], origins: [] } });
  const viewer = await context.newPage();
  const problems = watchConsole(viewer);
  await viewer.goto("/incidents");
  await signIn(viewer, email, password);
  // A password an admin set must be changed first; that ends the session.
  await expect(viewer).toHaveURL(/\/account$/);
  await waitForHydration(viewer);
  const change = viewer.getByTestId("change-password");
  await change.locator('input[name="current"]').fill(password);
  await change.locator('input[name="new"]').fill("viewer's own password");
  await change.getByRole("button").click();
  await expect(viewer).toHaveURL(/\/login$/);
  await signIn(viewer, email, "viewer's own password");
  await expect(viewer).toHaveURL(/\/incidents$/);
  await expect(viewer.getByTestId("user-name")).toHaveText("閲覧 太郎");
  await expect(viewer.getByTestId("user-role")).toHaveText("viewer");
  await expect(viewer.getByTestId("admin-nav")).toHaveCount(0);
  await waitForHydration(viewer);
  // An admin page opened by hand says the role does not allow it.
  await viewer.goto("/admin/users");
  await expect(viewer.locator(".load-failed")).toBeVisible();
  await viewer.goto("/account");
  await waitForHydration(viewer);
  await viewer.screenshot({ path: "test-results/screens/account.png", fullPage: true });
  expect(problems.filter((p) => !p.includes("403"))).toEqual([]);
  await context.close();
});
