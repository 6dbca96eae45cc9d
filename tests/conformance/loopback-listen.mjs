// Preloaded (node --import) into the stdio↔HTTP bridge the conformance suite talks to: a listen()
// that names no host binds 127.0.0.1 instead of every interface, and each listening server's
// address is reported on stderr ("bridge listening on {...}"), so port 0 can be used.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    if (typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1");
  } else if (first && typeof first === "object" && first.host === undefined && first.path === undefined) {
    args[0] = { ...first, host: "127.0.0.1" };
  }
  this.once("listening", () => process.stderr.write(`bridge listening on ${JSON.stringify(this.address())}\n`));
  return listen.apply(this, args);
};
