// A websocket that reconnects with exponential backoff and says what state it is in.
// Close codes 4401/4403/4404 are refusals (not signed in, not allowed, no such batch):
// reconnecting would be refused again, so the socket stays closed.

const REFUSED = new Set([4401, 4403, 4404]);
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;

export function socketUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

export class LiveSocket {
  constructor(path, { onMessage, onOpen, onState }) {
    this.url = socketUrl(path);
    this.onMessage = onMessage;
    this.onOpen = onOpen || (() => {});
    this.onState = onState || (() => {});
    this.failures = 0;
    this.stopped = false;
    this.socket = null;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  connect() {
    this.onState(this.failures ? "reconnecting" : "connecting");
    let socket;
    try {
      socket = new WebSocket(this.url, ["omtx.v1"]);
    } catch (error) {
      this.retry();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.failures = 0;
      this.onState("live");
      this.onOpen();
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      this.onMessage(message);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (REFUSED.has(event.code)) {
        this.onState("refused", event.code);
        return;
      }
      this.retry();
    });
  }

  retry() {
    this.failures += 1;
    this.onState("reconnecting");
    // Full jitter: many pages reconnecting after a restart do not arrive in step.
    const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (this.failures - 1));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
