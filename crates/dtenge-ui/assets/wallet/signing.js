// The holder's key and request signing. The key is made here with WebCrypto
// Ed25519, non-extractable, and kept in IndexedDB: nothing but its public
// half ever leaves the browser. Requests are signed the way the API's callers
// sign (RFC 9421 over an RFC 9530 Content-Digest, FAPI 2.0's profile): the
// signature base below is byte for byte the one dtenge_api_types::signing
// builds and verifies (tests/wallet_browser.rs checks it against that code).

const enc = new TextEncoder();
const DB = 'dtenge-wallet';
const STORE = 'holder';

export function base64(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

export function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

export function unhex(text) {
  if (!/^([0-9a-f]{2})*$/i.test(text)) throw new Error('not hex');
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
  return out;
}

export async function contentDigest(body) {
  const digest = await crypto.subtle.digest('SHA-256', enc.encode(body));
  return `sha-256=:${base64(digest)}:`;
}

export function signatureParams(created, keyid, nonce) {
  return `("@method" "@target-uri" "content-digest");created=${created};keyid="${keyid}";nonce="${nonce}";alg="ed25519";tag="fapi-2-request"`;
}

export function signatureBase(method, targetUri, digest, params) {
  return `"@method": ${method}\n"@target-uri": ${targetUri}\n"content-digest": ${digest}\n"@signature-params": ${params}`;
}

function nonce() {
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}

function db() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

// One transaction on the wallet's store (the holder's keys, and the purse in
// purse.js); resolves with `f`'s request's result once the transaction is
// committed — a write durable as IndexedDB makes it.
export async function stored(mode, f) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const t = d.transaction(STORE, mode, { durability: 'strict' });
    const req = f(t.objectStore(STORE));
    t.oncomplete = () => resolve(req.result);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new Error('wallet store transaction aborted'));
  });
}

// The stored holder: { keys: CryptoKeyPair, publicHex, account }.
export function loadHolder() {
  return stored('readonly', (s) => s.get('me'));
}

export function saveHolder(holder) {
  return stored('readwrite', (s) => s.put(holder, 'me'));
}

export async function newKeys() {
  // extractable = false: the private key can sign but can never be read out.
  const keys = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  const publicHex = hex(await crypto.subtle.exportKey('raw', keys.publicKey));
  return { keys, publicHex };
}

export async function sign(privateKey, bytes) {
  return new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, privateKey, bytes));
}

// The three signature headers of a POST of `body` to `path` on this origin.
export async function signedHeaders(holder, method, path, body, createdS = Math.floor(Date.now() / 1000), n = nonce()) {
  const digest = await contentDigest(body);
  const params = signatureParams(createdS, holder.publicHex, n);
  const base = signatureBase(method, location.origin + path, digest, params);
  const sig = await sign(holder.keys.privateKey, enc.encode(base));
  return {
    'content-digest': digest,
    'signature-input': `sig=${params}`,
    signature: `sig=:${base64(sig)}:`,
  };
}
