/**
 * The console's Tasks page: every live task (src/tasks/) with its owner, actor chain (RFC 8693
 * `act`, current actor first), purpose, grants, expiry and calls used against its budget, and
 * an End button. End does what `portcullis tasks end <id>` does (src/admin/tasks.ts): the task
 * service ends it and announces it, so every replica refuses its token from the next request;
 * the console records the action as `console.task_ended`. Like every console form it needs the
 * session's CSRF token (./access.ts).
 */
import { endTask, liveTaskViews, type TaskAdministration, type TaskView } from "../admin/tasks.js";
import type { ConsolePage, ConsoleRoutes } from "./access.js";
import { type Html, html } from "./html.js";
import { notice } from "./pages.js";

const TASK_ID = /^[A-Za-z0-9_-]{1,100}$/;

function taskRow(t: TaskView, csrf: string): Html {
  const calls = t.budget === null ? `${t.callsUsed}` : `${t.callsUsed} / ${t.budget}`;
  return html`<tr data-task="${t.id}"><td><code>${t.id}</code></td>
<td>${t.ownerName}<br><span class="muted">${t.ownerId} (${t.ownerMethod})</span></td>
<td>${t.actors.length === 0 ? html`<span class="muted">—</span>` : t.actors.join(" ← ")}</td>
<td>${t.purpose}</td><td>${t.grants.join(", ")}</td>
<td class="t">${t.expiresAt}</td><td>${calls}</td>
<td><form class="inline" method="post" action="/console/tasks/end"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="id" value="${t.id}"><button type="submit" class="deny" aria-label="End task ${t.id}">End</button></form></td></tr>`;
}

export function tasksPage(views: readonly TaskView[], csrf: string): Html {
  const intro = html`<p>Tasks are credentials for one piece of work (<code>portcullis tasks list</code>).
Ending a task refuses its token from the next request, on every gateway.</p>`;
  if (views.length === 0) return html`${intro}<p class="muted">No live tasks.</p>`;
  return html`${intro}<table><thead><tr><th scope="col">Task</th><th scope="col">Owner</th><th scope="col">Actor chain</th><th scope="col">Purpose</th><th scope="col">Grants</th><th scope="col">Expires</th><th scope="col">Calls used</th><th scope="col">Action</th></tr></thead><tbody>
${views.map((v) => taskRow(v, csrf))}</tbody></table>`;
}

export function registerTaskRoutes(routes: ConsoleRoutes, tasks: TaskAdministration | undefined): void {
  const page: ConsolePage = {
    title: "Tasks",
    path: "/console/tasks",
    body: async (a) =>
      tasks === undefined
        ? html`<p class="muted">Tasks are not available on this gateway.</p>`
        : tasksPage(await liveTaskViews(tasks), a.csrf),
  };
  routes.get(page.path, (_req, reply, a) => routes.show(reply, a, page));
  routes.post("/console/tasks/end", async (_req, reply, a, f) => {
    const id = f.get("id") ?? "";
    if (tasks === undefined || !TASK_ID.test(id))
      return routes.show(reply, a, page, notice("Not ended: the form is incomplete.", true), 400);
    const ended = await endTask(tasks, { id, by: `console:${a.user.username}` }, async (action) =>
      routes.record(a, `task ${action.taskId} ended in the console`, {
        event: "console.task_ended",
        taskId: action.taskId,
      }),
    );
    return ended
      ? routes.show(reply, a, page, notice(`Ended task ${id}: its token is refused from the next request.`))
      : routes.show(reply, a, page, notice(`Not ended: task ${id} is not live.`, true), 404);
  });
}
