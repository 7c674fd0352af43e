// Preloaded (`node --require`) into a published Node server that takes a port but no host: its sockets
// listen on 127.0.0.1 only, never on every interface, and the first one writes "address port" to the
// file LISTEN_FILE names, so the test can start it on port 0 (any free one) and find where it went.
"use strict";
const fs = require("node:fs");
const net = require("node:net");

const listen = net.Server.prototype.listen;
let reported = false;

net.Server.prototype.listen = function (...args) {
  if ((typeof args[0] === "number" || typeof args[0] === "string") && typeof args[1] !== "string") {
    args.splice(1, 0, "127.0.0.1");
  }
  this.once("listening", () => {
    const where = this.address();
    if (!reported && process.env.LISTEN_FILE && where && typeof where === "object") {
      reported = true;
      fs.writeFileSync(`${process.env.LISTEN_FILE}.tmp`, `${where.address} ${where.port}`);
      fs.renameSync(`${process.env.LISTEN_FILE}.tmp`, process.env.LISTEN_FILE); // whole, or not there yet
    }
  });
  return listen.apply(this, args);
};
