// Server-sent events over a POST: EventSource can only GET, so fetch reads the stream and this
// module parses it. Also the page's plain JSON requests (`fetchJson`) and the one wording of a
// refused request (`responseError`). Nothing here knows about music.

const MAX_PENDING = 1 << 20; // bytes without an event boundary: a broken or hostile stream

/** The Error for a refused request: the server's {"detail": ...} on one line, else the status;
 * a 429 says when to try again. Every request of the page words its errors with this. */
export async function responseError(response) {
  let detail = null;
  try {
    detail = (await response.json()).detail;
  } catch (ignored) {
    detail = null; // not JSON: the status says it
  }
  let message = detail || `${response.status} ${response.statusText}`;
  if (typeof message !== "string") message = JSON.stringify(message);
  const wait = response.headers.get("Retry-After");
  if (response.status === 429 && wait && !message.includes("try again")) {
    message += `: try again in ${wait} s`;
  }
  return new Error(message);
}

/** `fetch`, JSON in and out: a refused request throws responseError's Error; an answer that is
 * not JSON gives null. */
export async function fetchJson(path, options = {}) {
  const response = await fetch(path, options);
  if (!response.ok) throw await responseError(response);
  try {
    return await response.json();
  } catch (ignored) {
    return null;
  }
}

function parseBlock(block) {
  // one event: "event:" and "data:" lines; comments (":") and unknown fields are skipped
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  let parsed;
  try {
    parsed = JSON.parse(data.join("\n"));
  } catch (ignored) {
    throw new Error(`the server sent a ${event} event that is not JSON`);
  }
  return { event, data: parsed };
}

/** POST `body` as JSON to `url` and yield its events, {event, data}, as they arrive. */
export async function* postEvents(url, body, signal) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await responseError(response);
  const type = response.headers.get("Content-Type") || "";
  if (!type.startsWith("text/event-stream") || !response.body) {
    throw new Error(`the server answered ${type || "nothing"}, not an event stream`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  let carry = ""; // a "\r" that ends a chunk may begin a "\r\n"
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      let text = carry + decoder.decode(value, { stream: true });
      carry = text.endsWith("\r") ? "\r" : "";
      if (carry) text = text.slice(0, -1);
      pending += text.replace(/\r\n?/g, "\n");
      let boundary;
      while ((boundary = pending.indexOf("\n\n")) >= 0) {
        const event = parseBlock(pending.slice(0, boundary));
        pending = pending.slice(boundary + 2);
        if (event) yield event;
      }
      if (pending.length > MAX_PENDING) throw new Error("the server's event stream is garbled");
    }
    const last = parseBlock(pending + (carry + decoder.decode()).replace(/\r\n?/g, "\n"));
    if (last) yield last;
  } finally {
    reader.cancel().catch(() => {});
  }
}
