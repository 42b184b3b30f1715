// Chromium's own RTCPeerConnection against our WebRTC media parts
// (tests/browser/webrtc_interop_peer.cpp): the page offers audio from the fake
// microphone, the peer answers, ICE connects on 127.0.0.1, DTLS completes
// with Chromium as server (our answer says setup:active), and SRTP flows both
// ways. Passes when the peer exits 0 (it decrypted and decoded Chromium's
// Opus and sent its own) and Chromium's getStats() shows the DTLS transport
// connected and our audio received.
//
// With "we-offer" the roles turn: the peer offers (build_offer), Chromium
// answers setup:active, so the peer is the DTLS server and controls ICE.
// With "wrong-fingerprint" the peer checks Chromium's certificate against
// another fingerprint: the peer must refuse the handshake, and Chromium's
// transport must end up failed (it gets the alert).
//
//   TSUNAGU_NODE_MODULES=... node tests/browser/webrtc_interop.mjs PEER_BINARY [wrong-fingerprint|we-offer]
//   (exit 0 pass, 1 fail, 77 cannot run)

import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const SKIP = 77;
const modules = process.env.TSUNAGU_NODE_MODULES;
const executablePath = process.env.TSUNAGU_CHROMIUM || '/usr/bin/chromium';
const peerBinary = process.argv[2];
const wrongFingerprint = process.argv[3] === 'wrong-fingerprint';
const weOffer = process.argv[3] === 'we-offer';
const TIMEOUT_MS = 30000;

let playwright;
try {
  playwright = await import(pathToFileURL(path.join(modules, 'playwright-core', 'index.mjs')).href);
} catch (error) {
  console.log('cannot load playwright-core from ' + modules + ': ' + error.message);
  process.exit(SKIP);
}

let browser;
try {
  browser = await playwright.chromium.launch({
    executablePath, headless: true, timeout: 60000,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns'],
  });
} catch (error) {
  console.log('Chromium (' + executablePath + ') does not start: ' + error.message);
  process.exit(SKIP);
}

let peer;
let peerExit;
function fail(message) {
  console.log('FAIL: ' + message);
  if (peer && peer.exitCode === null) peer.kill('SIGKILL');
  browser.close().finally(() => process.exit(1));
}
const timer = setTimeout(() => fail('no result in ' + TIMEOUT_MS / 1000 + ' s'), TIMEOUT_MS);

try {
  const page = await browser.newPage();
  // A file: page is a secure context, which getUserMedia needs.
  await page.goto(pathToFileURL(path.dirname(new URL(import.meta.url).pathname)).href);
  // The page's peer connection with the fake microphone's track.
  await page.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const pc = new RTCPeerConnection();
    window.pc = pc;
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    window.gathered = new Promise((resolve) => {
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') resolve(); };
      setTimeout(resolve, 5000);
    });
  });

  const args = wrongFingerprint ? ['--expect-wrong-fingerprint'] : weOffer ? ['--offer'] : [];
  peer = spawn(peerBinary, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  peerExit = new Promise((resolve) => peer.on('exit', (code, signal) => resolve(code === null ? signal : code)));
  let out = '';
  const peerSays = (marker) => new Promise((resolve, reject) => {
    peer.stdout.on('data', (chunk) => {
      out += chunk;
      const end = out.indexOf(marker);
      if (end >= 0) resolve(out.slice(0, end));
    });
    peer.on('exit', (code) => reject(new Error('the peer exited (' + code + ') before ' + marker)));
  });

  if (weOffer) {
    const offer = await peerSays('END-OFFER');
    console.log('  ok: the peer offered (' + offer.split('\r\n').length + ' lines)');
    const answer = await page.evaluate(async (sdp) => {
      await window.pc.setRemoteDescription({ type: 'offer', sdp });
      await window.pc.setLocalDescription(await window.pc.createAnswer());
      await window.gathered;
      return window.pc.localDescription.sdp;
    }, offer);
    console.log('  ok: Chromium accepted the offer and answered (' + (answer.match(/a=setup:\w+/) || ['?'])[0] + ')');
    peer.stdin.end(answer);
  } else {
    const offer = await page.evaluate(async () => {
      await window.pc.setLocalDescription(await window.pc.createOffer());
      await window.gathered;
      return window.pc.localDescription.sdp;
    });
    peer.stdin.end(offer);
    const answer = await peerSays('END-ANSWER');
    console.log('  ok: the peer answered (' + answer.split('\r\n').length + ' lines)');
    await page.evaluate(async (sdp) => { await window.pc.setRemoteDescription({ type: 'answer', sdp }); }, answer);
    console.log('  ok: Chromium accepted the answer');
  }

  const code = await peerExit;
  if (code !== 0) throw new Error('the peer exited with ' + code);
  if (wrongFingerprint) {
    const state = await page.evaluate(async () => {
      for (let attempt = 0; attempt < 50; ++attempt) {
        let dtls = '';
        (await window.pc.getStats()).forEach((s) => { if (s.type === 'transport') dtls = s.dtlsState; });
        if (dtls === 'failed' || dtls === 'closed') return dtls;
        await new Promise((r) => setTimeout(r, 100));
      }
      return 'still not failed';
    });
    if (state !== 'failed' && state !== 'closed') throw new Error('Chromium\'s DTLS transport: ' + state);
    console.log('  ok: the peer refused Chromium\'s certificate and Chromium\'s DTLS transport is ' + state);
    clearTimeout(timer);
    await browser.close();
    process.exit(0);
  }
  console.log('  ok: the peer decrypted and decoded Chromium\'s audio and sent its own');

  const stats = await page.evaluate(async () => {
    const found = { dtlsState: '', srtpCipher: '', packetsReceived: 0 };
    for (let attempt = 0; attempt < 20; ++attempt) {
      const report = await window.pc.getStats();
      report.forEach((s) => {
        if (s.type === 'transport') { found.dtlsState = s.dtlsState; found.srtpCipher = s.srtpCipher; }
        if (s.type === 'inbound-rtp' && s.kind === 'audio') found.packetsReceived = s.packetsReceived;
      });
      if (found.packetsReceived > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return found;
  });
  console.log('  Chromium: ' + JSON.stringify(stats));
  if (stats.dtlsState !== 'connected') throw new Error('Chromium\'s DTLS transport is ' + stats.dtlsState);
  if (!(stats.packetsReceived > 0)) throw new Error('Chromium received none of our RTP');
  console.log('  ok: Chromium\'s DTLS is connected (' + stats.srtpCipher + ') and it received ' +
    stats.packetsReceived + ' of our packets');
  clearTimeout(timer);
  await browser.close();
  process.exit(0);
} catch (error) {
  clearTimeout(timer);
  fail(error.message);
}
