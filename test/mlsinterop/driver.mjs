// ts-mls peer for agw's MLS cross-implementation tests (test/mlsinterop).
//
// The Go test starts `node driver.mjs` and speaks JSON lines: one command per
// line on stdin, one reply per line on stdout, in order. Binary values are
// hex strings; MLS messages are MLSMessage in their RFC 9420 wire encoding.
//
//   -> {"id": 7, "op": "keypackage", "name": "bob", "suite": 1}
//   <- {"id": 7, "ok": true, "keyPackage": "0001..."}
//   <- {"id": 8, "ok": false, "error": "..."}
//
// State (key packages, group states) is kept per member name inside this
// process. Secrets never leave the process except what a command explicitly
// asks for (exporter output, epoch authenticator), which the test compares.
// Diagnostics go to stderr.
//
// Workarounds for two ts-mls 1.6.4 deviations from RFC 9420 (both on by
// default; a command can ask for ts-mls's native behaviour with
// "native": true to show the incompatibility):
//
//  1. ECDSA signature public keys (suites 2, 5, 7). ts-mls takes them from
//     @noble/curves getPublicKey(), which returns a compressed point; RFC
//     9420 §5.1.1 requires the UncompressedPointRepresentation. The driver
//     generates the signature key pair itself with an uncompressed public key
//     and passes it to generateKeyPackageWithKey (ts-mls verifies either form).
//  2. external_pub GroupInfo extension. RFC 9420 §12.4.3.2 defines its body as
//     struct { HPKEPublicKey external_pub; } with HPKEPublicKey = opaque<V>,
//     i.e. a length-prefixed key; ts-mls writes and reads the bare key. The
//     driver writes the prefixed form when it exports a GroupInfo, and strips
//     the prefix for ts-mls when it joins from a GroupInfo of another
//     implementation.

import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import {
  acceptAll,
  ciphersuites,
  createApplicationMessage,
  createCommit,
  createGroup,
  createGroupInfoWithExternalPubAndRatchetTree,
  createProposal,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  joinGroupExternal,
  makePskIndex,
  mlsExporter,
  processMessage,
  processPrivateMessage,
} from "ts-mls";
import { decodeRatchetTree, encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { createGroupInfo } from "ts-mls/createCommit.js";
import { p256, p384, p521 } from "@noble/curves/nist.js";

const impls = new Map(); // suite id -> CiphersuiteImpl
const keyPackages = new Map(); // name -> {suite, publicPackage, privatePackage}
const groups = new Map(); // name -> {suite, state}
const externalPsks = new Map(); // name -> {base64(psk_id): secret}

function pskIndex(name, state) {
  return makePskIndex(state, externalPsks.get(name) ?? {});
}

async function impl(suiteId) {
  let cs = impls.get(suiteId);
  if (cs === undefined) {
    const name = Object.keys(ciphersuites).find((n) => ciphersuites[n] === suiteId);
    if (name === undefined) throw new Error(`unknown cipher suite ${suiteId}`);
    cs = await getCiphersuiteImpl(getCiphersuiteFromName(name));
    impls.set(suiteId, cs);
  }
  return cs;
}

const hex = (b) => Buffer.from(b).toString("hex");
function unhex(s, what) {
  if (typeof s !== "string" || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new Error(`${what}: not a hex string`);
  }
  return new Uint8Array(Buffer.from(s, "hex"));
}

// decode parses an MLSMessage strictly and checks its wire format.
function decode(hexMsg, wireformat, what) {
  const bytes = unhex(hexMsg, what);
  const res = decodeMlsMessage(bytes, 0);
  if (res === undefined) throw new Error(`${what}: MLSMessage does not decode`);
  const [msg, n] = res;
  if (n !== bytes.length) throw new Error(`${what}: ${bytes.length - n} trailing bytes after MLSMessage`);
  if (wireformat !== undefined && msg.wireformat !== wireformat) {
    throw new Error(`${what}: wire format ${msg.wireformat}, want ${wireformat}`);
  }
  return msg;
}

function encode(content) {
  return hex(encodeMlsMessage({ version: "mls10", ...content }));
}

function group(name) {
  const g = groups.get(name);
  if (g === undefined) throw new Error(`no group state for member ${JSON.stringify(name)}`);
  return g;
}

// ecdsaCurves are the ECDSA suites' curves, for RFC-conformant public keys.
const ecdsaCurves = { 2: p256, 5: p521, 7: p384 };

async function newKeyPackage(suiteId, identity, native = false) {
  const cs = await impl(suiteId);
  const cred = { credentialType: "basic", identity: new TextEncoder().encode(identity) };
  const curve = ecdsaCurves[suiteId];
  let kp;
  if (curve !== undefined && !native) {
    const signKey = curve.utils.randomSecretKey();
    const publicKey = curve.getPublicKey(signKey, false); // uncompressed, RFC 9420 §5.1.1
    kp = await generateKeyPackageWithKey(cred, defaultCapabilities(), defaultLifetime, [], { signKey, publicKey }, cs);
  } else {
    kp = await generateKeyPackage(cred, defaultCapabilities(), defaultLifetime, [], cs);
  }
  return { suite: suiteId, ...kp };
}

// varint encodes an MLS variable-length vector length (RFC 9420 §2.1.2).
function varint(n) {
  if (n < 0x40) return Uint8Array.of(n);
  if (n < 0x4000) return Uint8Array.of(0x40 | (n >> 8), n & 0xff);
  if (n < 0x40000000) return Uint8Array.of(0x80 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
  throw new Error("varint: length too large");
}

// opaqueV encodes opaque<V>.
function opaqueV(b) {
  const out = new Uint8Array(varint(b.length).length + b.length);
  out.set(varint(b.length), 0);
  out.set(b, out.length - b.length);
  return out;
}

// unOpaqueV decodes an opaque<V> that must fill b exactly.
function unOpaqueV(b, what) {
  if (b.length === 0) throw new Error(`${what}: empty`);
  const prefix = 1 << (b[0] >> 6);
  if (prefix > 4 || b.length < prefix) throw new Error(`${what}: bad length prefix`);
  let n = b[0] & 0x3f;
  for (let i = 1; i < prefix; i++) n = n * 256 + b[i];
  if (prefix + n !== b.length) throw new Error(`${what}: length ${n} does not fill the ${b.length}-byte body`);
  return b.subarray(prefix);
}

function describe(g) {
  const st = g.state;
  return {
    epoch: Number(st.groupContext.epoch),
    leafIndex: st.privatePath.leafIndex,
    epochAuthenticator: hex(st.keySchedule.epochAuthenticator),
    active: st.groupActiveState.kind === "active",
    members: st.ratchetTree.filter((_, i) => i % 2 === 0).filter((n) => n !== undefined).length,
  };
}

function commitReply(res, g) {
  const out = { commit: hex(encodeMlsMessage(res.commit)), ...describe(g) };
  if (res.welcome !== undefined) out.welcome = encode({ wireformat: "mls_welcome", welcome: res.welcome });
  out.ratchetTree = hex(encodeRatchetTree(g.state.ratchetTree));
  return out;
}

function decodeKeyPackageProposal(kpHex, i) {
  const msg = decode(kpHex, "mls_key_package", `keyPackages[${i}]`);
  return { proposalType: "add", add: { keyPackage: msg.keyPackage } };
}

async function doCommit(g, cmd, extraProposals) {
  const cs = await impl(g.suite);
  const res = await createCommit(
    { state: g.state, cipherSuite: cs, pskIndex: pskIndex(cmd.name, g.state) },
    {
      wireAsPublicMessage: cmd.public !== false,
      extraProposals,
      ratchetTreeExtension: cmd.ratchetTreeExtension !== false,
    },
  );
  g.state = res.newState;
  return commitReply(res, g);
}

const ops = {
  // keypackage {name, suite, identity} -> {keyPackage}
  async keypackage(cmd) {
    const kp = await newKeyPackage(cmd.suite, cmd.identity ?? cmd.name, cmd.native === true);
    keyPackages.set(cmd.name, kp);
    return { keyPackage: encode({ wireformat: "mls_key_package", keyPackage: kp.publicPackage }) };
  },

  // create {name, suite, groupId, identity} -> state
  async create(cmd) {
    const cs = await impl(cmd.suite);
    const kp = await newKeyPackage(cmd.suite, cmd.identity ?? cmd.name, cmd.native === true);
    const state = await createGroup(unhex(cmd.groupId, "groupId"), kp.publicPackage, kp.privatePackage, [], cs);
    const g = { suite: cmd.suite, state };
    groups.set(cmd.name, g);
    return describe(g);
  },

  // add {name, keyPackages: [hex], public, ratchetTreeExtension} -> {commit, welcome, ratchetTree, ...state}
  async add(cmd) {
    const g = group(cmd.name);
    const props = (cmd.keyPackages ?? []).map(decodeKeyPackageProposal);
    return doCommit(g, cmd, props);
  },

  // remove {name, leaves: [n], public} -> {commit, ...}
  async remove(cmd) {
    const g = group(cmd.name);
    const props = (cmd.leaves ?? []).map((l) => ({ proposalType: "remove", remove: { removed: l } }));
    return doCommit(g, cmd, props);
  },

  // commit {name, public, keyPackages?, leaves?, extensions?} -> commit of the
  // cached proposals plus the given ones (extensions: [{type, data}] makes a
  // GroupContextExtensions proposal). With no proposals at all this is a
  // self-update (full path).
  async commit(cmd) {
    const g = group(cmd.name);
    const props = [
      ...(cmd.keyPackages ?? []).map(decodeKeyPackageProposal),
      ...(cmd.leaves ?? []).map((l) => ({ proposalType: "remove", remove: { removed: l } })),
    ];
    for (const id of cmd.psks ?? []) {
      const nonce = new Uint8Array(cs(g).kdf.size);
      crypto.getRandomValues(nonce);
      props.push({ proposalType: "psk", psk: { preSharedKeyId: { psktype: "external", pskId: unhex(id, "psks"), pskNonce: nonce } } });
    }
    if (cmd.extensions !== undefined) {
      props.push({
        proposalType: "group_context_extensions",
        groupContextExtensions: { extensions: cmd.extensions.map(extensionFromJSON) },
      });
    }
    return doCommit(g, cmd, props);
  },

  // propose {name, kind: "add"|"remove"|"extensions", keyPackage?, leaf?,
  // extensions?, public} -> {message}
  async propose(cmd) {
    const g = group(cmd.name);
    const cs = await impl(g.suite);
    let proposal;
    if (cmd.kind === "add") proposal = decodeKeyPackageProposal(cmd.keyPackage, 0);
    else if (cmd.kind === "remove") proposal = { proposalType: "remove", remove: { removed: cmd.leaf } };
    else if (cmd.kind === "extensions") {
      proposal = {
        proposalType: "group_context_extensions",
        groupContextExtensions: { extensions: (cmd.extensions ?? []).map(extensionFromJSON) },
      };
    }
    else throw new Error(`propose: unsupported proposal kind ${JSON.stringify(cmd.kind)}`);
    const res = await createProposal(g.state, cmd.public !== false, proposal, cs);
    g.state = res.newState;
    return { message: hex(encodeMlsMessage(res.message)), ...describe(g) };
  },

  // join {name, welcome, ratchetTree?} -> state (uses the key package made by keypackage)
  async join(cmd) {
    const kp = keyPackages.get(cmd.name);
    if (kp === undefined) throw new Error(`join: no key package for ${JSON.stringify(cmd.name)}`);
    const cs = await impl(kp.suite);
    const msg = decode(cmd.welcome, "mls_welcome", "welcome");
    const tree = cmd.ratchetTree ? decodeTree(cmd.ratchetTree) : undefined;
    const state = await joinGroup(msg.welcome, kp.publicPackage, kp.privatePackage, pskIndex(cmd.name, undefined), cs, tree);
    const g = { suite: kp.suite, state };
    groups.set(cmd.name, g);
    keyPackages.delete(cmd.name);
    return describe(g);
  },

  // joinExternal {name, suite, identity, groupInfo, ratchetTree?} -> {commit, ...state}
  async joinExternal(cmd) {
    const cs = await impl(cmd.suite);
    const kp = await newKeyPackage(cmd.suite, cmd.identity ?? cmd.name, cmd.native === true);
    const msg = decode(cmd.groupInfo, "mls_group_info", "groupInfo");
    const tree = cmd.ratchetTree ? decodeTree(cmd.ratchetTree) : undefined;
    if (cmd.native !== true) bareExternalPubForTsMls(msg.groupInfo);
    const res = await joinGroupExternal(msg.groupInfo, kp.publicPackage, kp.privatePackage, false, cs, tree);
    const g = { suite: cmd.suite, state: res.newState };
    groups.set(cmd.name, g);
    return { commit: encode({ wireformat: "mls_public_message", publicMessage: res.publicMessage }), ...describe(g) };
  },

  // groupInfo {name, native?} -> {groupInfo} with external_pub and ratchet_tree
  async groupInfo(cmd) {
    const g = group(cmd.name);
    const cs = await impl(g.suite);
    let gi;
    if (cmd.native === true) {
      gi = await createGroupInfoWithExternalPubAndRatchetTree(g.state, [], cs);
    } else {
      const kp = await cs.hpke.deriveKeyPair(g.state.keySchedule.externalSecret);
      const externalPub = await cs.hpke.exportPublicKey(kp.publicKey);
      gi = await createGroupInfo(g.state.groupContext, g.state.confirmationTag, g.state, [
        { extensionType: "external_pub", extensionData: opaqueV(externalPub) },
        { extensionType: "ratchet_tree", extensionData: encodeRatchetTree(g.state.ratchetTree) },
      ], cs);
    }
    return { groupInfo: encode({ wireformat: "mls_group_info", groupInfo: gi }) };
  },

  // process {name, message} -> {kind: "application"|"proposal"|"commit", data?, ...state}
  async process(cmd) {
    const g = group(cmd.name);
    const cs = await impl(g.suite);
    const msg = decode(cmd.message, undefined, "message");
    if (msg.wireformat !== "mls_public_message" && msg.wireformat !== "mls_private_message") {
      throw new Error(`process: wire format ${msg.wireformat} is not a group message`);
    }
    const epochBefore = g.state.groupContext.epoch;
    // ts-mls's processMessage passes an empty PSK index for PrivateMessages
    // (processMessages.js), so those go to processPrivateMessage directly.
    const psks = pskIndex(cmd.name, g.state);
    const res = msg.wireformat === "mls_private_message"
      ? await processPrivateMessage(g.state, msg.privateMessage, psks, cs, acceptAll)
      : await processMessage(msg, g.state, psks, acceptAll, cs);
    g.state = res.newState;
    if (res.kind === "applicationMessage") {
      return { kind: "application", data: hex(res.message), ...describe(g) };
    }
    const committed = g.state.groupContext.epoch !== epochBefore || g.state.groupActiveState.kind === "removedFromGroup";
    return { kind: committed ? "commit" : "proposal", ...describe(g) };
  },

  // encrypt {name, data} -> {message}
  async encrypt(cmd) {
    const g = group(cmd.name);
    const cs = await impl(g.suite);
    const res = await createApplicationMessage(g.state, unhex(cmd.data, "data"), cs);
    g.state = res.newState;
    return { message: encode({ wireformat: "mls_private_message", privateMessage: res.privateMessage }) };
  },

  // state {name} -> {epoch, leafIndex, epochAuthenticator, active, members}
  async state(cmd) {
    return describe(group(cmd.name));
  },

  // export {name, label, context, length} -> {secret}
  async export(cmd) {
    const g = group(cmd.name);
    const cs = await impl(g.suite);
    const out = await mlsExporter(g.state.keySchedule.exporterSecret, cmd.label, unhex(cmd.context ?? "", "context"), cmd.length, cs);
    return { secret: hex(out) };
  },

  // ratchetTree {name} -> {ratchetTree}
  async ratchetTree(cmd) {
    return { ratchetTree: hex(encodeRatchetTree(group(cmd.name).state.ratchetTree)) };
  },

  // psk {name, pskId, secret}: make an external PSK available to a member.
  async psk(cmd) {
    const m = externalPsks.get(cmd.name) ?? {};
    m[Buffer.from(unhex(cmd.pskId, "pskId")).toString("base64")] = unhex(cmd.secret, "secret");
    externalPsks.set(cmd.name, m);
    return {};
  },

  // forget {name}: drop a member's state.
  async forget(cmd) {
    groups.delete(cmd.name);
    keyPackages.delete(cmd.name);
    return {};
  },

  // bench {suite, sizes, iterations, payload} -> {results: [{op, size, ms}]}
  async bench(cmd) {
    return { results: await runBench(cmd.suite, cmd.sizes ?? [16], cmd.iterations ?? 3, cmd.payload ?? 1024, cmd.messages ?? 50) };
  },
};

// bareExternalPubForTsMls makes ts-mls's joinGroupExternal read the bare key
// from an RFC-encoded external_pub extension while the GroupInfo signature
// is still checked over the bytes as received: joinGroupExternal reads
// extensionData once for the key (its first read) and the signature check
// re-encodes the GroupInfo afterwards.
function bareExternalPubForTsMls(gi) {
  const i = gi.extensions.findIndex((e) => e.extensionType === "external_pub");
  if (i < 0) throw new Error("groupInfo: no external_pub extension");
  const full = gi.extensions[i].extensionData;
  const bare = unOpaqueV(full, "external_pub");
  let reads = 0;
  gi.extensions[i] = {
    extensionType: "external_pub",
    get extensionData() {
      return reads++ === 0 ? bare : full;
    },
  };
}

// extensionNames maps the RFC 9420 extension types ts-mls names.
const extensionNames = { 1: "application_id", 2: "ratchet_tree", 3: "required_capabilities", 4: "external_pub", 5: "external_senders" };

function extensionFromJSON(e, i) {
  if (typeof e !== "object" || e === null || !Number.isInteger(e.type)) throw new Error(`extensions[${i}]: want {type, data}`);
  return { extensionType: extensionNames[e.type] ?? e.type, extensionData: unhex(e.data ?? "", `extensions[${i}].data`) };
}

// cs returns the cipher suite implementation of a group already set up.
function cs(g) {
  const c = impls.get(g.suite);
  if (c === undefined) throw new Error("cipher suite not loaded");
  return c;
}

function decodeTree(treeHex) {
  const bytes = unhex(treeHex, "ratchetTree");
  const res = decodeRatchetTree(bytes, 0);
  if (res === undefined || res[1] !== bytes.length) throw new Error("ratchetTree: does not decode");
  return res[0];
}

// runBench times the same operations as the Go side (bench.go) inside this
// process, so no IPC is measured: create a group; for a group of n members,
// commit an Add of one new member, process that commit at another member,
// and join the new member from the Welcome; encrypt and decrypt a payload.
// Each iteration adds one more member, so the group grows from n to
// n+iterations; the reported figure is the median.
async function runBench(suiteId, sizes, iterations, payload, messages) {
  const cs = await impl(suiteId);
  const results = [];
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  };
  const time = async (f) => {
    const t0 = performance.now();
    const v = await f();
    return [performance.now() - t0, v];
  };

  // create group (key generation included, as Go's NewGroup generates keys)
  {
    const ts = [];
    for (let i = 0; i < iterations; i++) {
      const [ms] = await time(async () => {
        const kp = await newKeyPackage(suiteId, `creator-${i}`);
        return createGroup(new TextEncoder().encode(`bench-create-${i}`), kp.publicPackage, kp.privatePackage, [], cs);
      });
      ts.push(ms);
    }
    results.push({ op: "create group", size: 1, ms: median(ts) });
  }

  for (const n of sizes) {
    // Build a group of n: the creator adds n-1 members in one commit; the
    // last one joins from the Welcome and is the receiver of later commits.
    const creatorKp = await newKeyPackage(suiteId, "creator");
    let creator = await createGroup(new TextEncoder().encode(`bench-${n}`), creatorKp.publicPackage, creatorKp.privatePackage, [], cs);
    const others = [];
    for (let i = 1; i < n; i++) others.push(await newKeyPackage(suiteId, `member-${i}`));
    let receiver;
    if (n > 1) {
      const res = await createCommit(
        { state: creator, cipherSuite: cs },
        { extraProposals: others.map((kp) => ({ proposalType: "add", add: { keyPackage: kp.publicPackage } })), ratchetTreeExtension: true, wireAsPublicMessage: true },
      );
      creator = res.newState;
      const last = others[others.length - 1];
      receiver = await joinGroup(res.welcome, last.publicPackage, last.privatePackage, emptyPskIndex, cs);
    }
    const add = [], proc = [], join = [];
    for (let i = 0; i < iterations; i++) {
      const kp = await newKeyPackage(suiteId, `joiner-${i}`);
      const [msAdd, res] = await time(() =>
        createCommit(
          { state: creator, cipherSuite: cs },
          { extraProposals: [{ proposalType: "add", add: { keyPackage: kp.publicPackage } }], ratchetTreeExtension: true, wireAsPublicMessage: true },
        ),
      );
      creator = res.newState;
      add.push(msAdd);
      if (receiver !== undefined) {
        const [msProc, pr] = await time(() => processMessage(res.commit, receiver, emptyPskIndex, acceptAll, cs));
        receiver = pr.newState;
        proc.push(msProc);
      }
      const [msJoin, joined] = await time(() => joinGroup(res.welcome, kp.publicPackage, kp.privatePackage, emptyPskIndex, cs));
      if (joined.keySchedule.epochAuthenticator.length === 0) throw new Error("bench: join produced no state");
      join.push(msJoin);
    }
    results.push({ op: "add member (commit)", size: n, ms: median(add) });
    if (proc.length > 0) results.push({ op: "process commit", size: n, ms: median(proc) });
    results.push({ op: "join from welcome", size: n, ms: median(join) });

    if (n === sizes[0] && receiver !== undefined) {
      const data = new Uint8Array(payload).fill(0x61);
      const enc = [], dec = [];
      for (let i = 0; i < messages; i++) {
        const [msEnc, m] = await time(() => createApplicationMessage(creator, data, cs));
        creator = m.newState;
        enc.push(msEnc);
        const wrapped = { version: "mls10", wireformat: "mls_private_message", privateMessage: m.privateMessage };
        const [msDec, d] = await time(() => processMessage(wrapped, receiver, emptyPskIndex, acceptAll, cs));
        receiver = d.newState;
        if (d.kind !== "applicationMessage" || d.message.length !== payload) throw new Error("bench: decrypt mismatch");
        dec.push(msDec);
      }
      results.push({ op: `encrypt ${payload} B`, size: n, ms: median(enc) });
      results.push({ op: `decrypt ${payload} B`, size: n, ms: median(dec) });
    }
  }
  return results;
}

function errorText(e) {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
let chain = Promise.resolve();
rl.on("line", (line) => {
  if (line.trim() === "") return;
  chain = chain.then(async () => {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      process.stdout.write(JSON.stringify({ id: null, ok: false, error: `bad JSON command: ${errorText(e)}` }) + "\n");
      return;
    }
    const id = cmd.id ?? null;
    const op = ops[cmd.op];
    let reply;
    if (op === undefined) {
      reply = { id, ok: false, error: `unknown op ${JSON.stringify(cmd.op)}` };
    } else {
      try {
        reply = { id, ok: true, ...(await op(cmd)) };
      } catch (e) {
        if (process.env.MLSINTEROP_DEBUG) console.error(e);
        reply = { id, ok: false, error: errorText(e) };
      }
    }
    process.stdout.write(JSON.stringify(reply) + "\n");
  });
});
rl.on("close", () => {
  chain.then(() => process.exit(0));
});
