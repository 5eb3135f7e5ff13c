// Offline after the first visit: every same-origin GET goes to the network first and a copy
// of each good answer is kept in Cache Storage; when the network fails, the copy answers.
// Sending (POST, PATCH) always goes to the network: the client's outbox keeps what could
// not be sent. Admin pages and answers are never kept, nor is /api/health (it says whether
// the server is reachable).
const CACHE = "webfl-offline-1";
const NEVER_KEPT = [/^\/api\/admin\//, /^\/api\/health$/, /^\/admin/];

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function keepable(request) {
  const url = new URL(request.url);
  return request.method === "GET" && url.origin === self.location.origin &&
    !NEVER_KEPT.some((pattern) => pattern.test(url.pathname));
}

async function keep(request, response) {
  const cache = await caches.open(CACHE);
  const known = await cache.match(request);
  const tag = response.headers.get("ETag");
  if (known && tag && known.headers.get("ETag") === tag) return;  // the same bytes: no rewrite
  await cache.put(request, response);
}

async function answer(event) {
  const request = event.request;
  try {
    const response = await fetch(request);
    if (response.status === 200) event.waitUntil(keep(request, response.clone()));
    return response;
  } catch (offline) {
    // any page URL (?join=, ?task=) is the same page: the kept copy of any of them will do
    const kept = await caches.match(request, {ignoreSearch: request.mode === "navigate"});
    if (kept) return kept;
    throw offline;
  }
}

self.addEventListener("fetch", (event) => {
  if (keepable(event.request)) event.respondWith(answer(event));
});
