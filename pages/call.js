// Calls on the dialing page (docs/web.md, "Calls from the page"): the page
// takes calls while it is open, places a call to the looked-up ID, answers or
// declines a ring, hangs up, mutes, sends DTMF (RTCDTMFSender: RFC 4733 events,
// which `tsunagu listen` prints), and shows the call's quality from getStats().
// Signalling goes through the node on the event socket (app.js callSignal);
// the offer and answer go at once, and each candidate follows as it is
// gathered (trickle ICE: the node relays `candidate` messages to pages and, as
// call_candidate, to terminals).
import { callSignal, eventsOpen, say } from './app.js';

// Candidates from the other side that arrive before this page has its peer connection (a ring not yet answered).
const MAX_EARLY_CANDIDATES = 32;
// End codes after which the caller may leave a voicemail instead.
const VOICEMAIL_CODES = new Set([408, 480, 486, 603]);

let call = null;  // {id, peer, role, pc, stream, ring} while a call is placed, rings or runs
let pendingCall = null;  // {to} between "call" and the node's call_prepared
let statsTimer = null;
let onUnanswered = () => {};

// What the tests read (tests/browser/pages.mjs): the live call's numbers.
window.tsunaguCall = { state: 'idle', stats: null, ended: null };

function show(id, visible) { document.getElementById(id).hidden = !visible; }
function callSay(text, kind = 'ok') { say(text, kind, 'call-state'); }

async function microphone() {
  return navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: false } });
}

function newConnection(iceServers, stream) {
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
  for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
  pc.addEventListener('track', (event) => {
    const audio = new Audio();
    audio.srcObject = event.streams[0] || new MediaStream([event.track]);
    audio.play().catch(() => {});
    call.audio = audio;
  });
  pc.addEventListener('icecandidate', (event) => {
    // A candidate follows our description (before it the node has no one to relay it to); null ends gathering.
    if (!call || call.pc !== pc || !event.candidate || !event.candidate.candidate) return;
    if (call.described) sendCandidate(event.candidate.candidate);
    else (call.unsent = call.unsent || []).push(event.candidate.candidate);
  });
  pc.addEventListener('connectionstatechange', () => {
    if (!call || call.pc !== pc) return;
    if (pc.connectionState === 'connected') {
      window.tsunaguCall.state = 'connected';
      callSay('Connected with ' + call.peer + '.');
      reportPath(pc, call.id).catch(() => {});
      followPair(pc);
    } else if (pc.connectionState === 'failed') {
      callSay('The call\'s media path failed.', 'error');
      hangUp();
    }
  });
  return pc;
}

function sendCandidate(candidate) {
  callSignal({ type: 'candidate', call_id: call.id, candidate });
  (call.sent = call.sent || []).push(candidate);
}

// Our offer or answer went out: the candidates gathered meanwhile follow it.
function described() {
  call.described = true;
  for (const candidate of call.unsent || []) sendCandidate(candidate);
  call.unsent = null;
}

// The other side's candidates wait for its description (addIceCandidate needs it).
function addEarlyCandidates() {
  for (const candidate of call.early || []) call.pc.addIceCandidate({ candidate, sdpMLineIndex: 0 }).catch(() => {});
  call.early = null;
}

// The pair ICE selected (getStats' transport names it), as its two candidates' stats.
const CANDIDATE_TYPES = new Set(['host', 'srflx', 'prflx', 'relay']);
function selectedPair(report) {
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
  });
  const local = pair && report.get(pair.localCandidateId);
  const remote = pair && report.get(pair.remoteCandidateId);
  return local && remote ? { local, remote } : null;
}

// One end of the pair for people: Chromium leaves a peer-reflexive candidate's
// address empty (it was learnt from a check, never signalled), so say what it is.
export function describeCandidate(candidate) {
  const address = candidate.address || candidate.ip || '';
  if (!address) return candidate.candidateType === 'prflx' ? 'peer-reflexive' : candidate.candidateType;
  const where = address.includes(':') ? '[' + address + ']' : address;
  return candidate.candidateType + ' ' + where + (candidate.port ? ':' + candidate.port : '');
}

// The pair as the page shows and the tests read it; ICE may move to another
// pair after connected (a relayed one nominated first, the punched one later),
// so this follows the ICE transport's selectedcandidatepairchange and the ICE
// state's changes, and the quality timer reads it again every second.
function notePair(pair) {
  const path = pair.local.candidateType + '/' + pair.remote.candidateType;
  const shown = describeCandidate(pair.local) + ' ↔ ' + describeCandidate(pair.remote);
  const id = call ? call.id : null;
  const before = window.tsunaguCall.pair && window.tsunaguCall.pair.callId === id ? window.tsunaguCall.pair : null;
  const changes = before ? before.changes + (before.shown === shown ? 0 : 1) : 0;
  window.tsunaguCall.path = path;
  window.tsunaguCall.pair = { callId: id, path, shown, changes };
}

async function readPair(pc) {
  if (!call || call.pc !== pc) return;
  const pair = selectedPair(await pc.getStats());
  if (pair && call && call.pc === pc) notePair(pair);
}

function followPair(pc) {
  const sender = pc.getSenders().find((s) => s.transport);
  const ice = sender && sender.transport.iceTransport;
  if (ice && !ice.tsunaguFollowed) {
    ice.tsunaguFollowed = true;
    ice.addEventListener('selectedcandidatepairchange', () => readPair(pc).catch(() => {}));
  }
  if (!pc.tsunaguFollowed) {
    pc.tsunaguFollowed = true;
    pc.addEventListener('iceconnectionstatechange', () => readPair(pc).catch(() => {}));
  }
  readPair(pc).catch(() => {});
}

// The pair ICE selected, as candidate types, for the node's call end audit
// line (`path=`, docs/operator.md); the CLI reports its own the same way. The
// node keeps the first report: the pair media flowed on once connected.
async function reportPath(pc, id) {
  const pair = selectedPair(await pc.getStats());
  if (!pair || !CANDIDATE_TYPES.has(pair.local.candidateType) || !CANDIDATE_TYPES.has(pair.remote.candidateType)) return;
  if (call && call.pc === pc) notePair(pair);
  callSignal({ type: 'call_path', call_id: id, local: pair.local.candidateType, remote: pair.remote.candidateType });
}

function startStats() {
  clearInterval(statsTimer);
  statsTimer = setInterval(async () => {
    if (!call || !call.pc) return;
    const report = await call.pc.getStats();
    const stats = { packetsReceived: 0, packetsLost: 0, jitterMs: 0, rttMs: null, packetsSent: 0, audioEnergy: 0 };
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        stats.packetsReceived = s.packetsReceived || 0;
        stats.packetsLost = s.packetsLost || 0;
        stats.jitterMs = Math.round((s.jitter || 0) * 1000);
        stats.audioEnergy = s.totalAudioEnergy || 0;
      } else if (s.type === 'outbound-rtp' && s.kind === 'audio') {
        stats.packetsSent = s.packetsSent || 0;
      } else if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime !== undefined) {
        stats.rttMs = Math.round(s.currentRoundTripTime * 1000);
      }
    });
    const pair = selectedPair(report);
    if (pair && call) notePair(pair);
    window.tsunaguCall.stats = stats;
    const total = stats.packetsReceived + stats.packetsLost;
    const loss = total ? (100 * stats.packetsLost / total).toFixed(1) : '0.0';
    const shown = window.tsunaguCall.pair;
    document.getElementById('call-quality').textContent = 'Received ' + stats.packetsReceived + ' packets, loss '
      + loss + ' %, jitter ' + stats.jitterMs + ' ms' + (stats.rttMs === null ? '' : ', round trip ' + stats.rttMs + ' ms')
      + (shown ? '; path ' + shown.shown : '');
  }, 1000);
}

function cleanUp() {
  clearInterval(statsTimer);
  if (call) {
    if (call.pc) call.pc.close();
    if (call.stream) for (const track of call.stream.getTracks()) track.stop();
    if (call.audio) call.audio.srcObject = null;
  }
  call = null;
  pendingCall = null;
  window.tsunaguCall.state = 'idle';
  show('call', false);
  show('incoming', false);
  document.getElementById('mute').setAttribute('aria-pressed', 'false');
  document.getElementById('mute').textContent = 'Mute';
}

export async function placeCall(to) {
  if (call || pendingCall) return;
  if (!eventsOpen()) {
    callSay('Not connected to the node yet; try again in a moment.', 'error');
    return;
  }
  show('call', true);
  document.getElementById('call-heading').textContent = 'Calling ' + to;
  callSay('Calling ' + to + '…');
  try {
    pendingCall = { to, stream: await microphone() };
  } catch (error) {
    callSay('No microphone: ' + error.message, 'error');
    cleanUp();
    return;
  }
  window.tsunaguCall.state = 'calling';
  callSignal({ type: 'call', to });
}

function hangUp() {
  if (call && call.ring) callSignal({ type: 'decline', call_id: call.id });
  else if (call) callSignal({ type: 'hangup', call_id: call.id });
  window.tsunaguCall.ended = { code: 200, reason: 'hung up here' };
  cleanUp();
  callSay('Hung up.');
}

async function prepared(message) {
  if (!pendingCall || pendingCall.to !== message.to) {
    callSignal({ type: 'hangup', call_id: message.call_id });
    return;
  }
  const { to, stream } = pendingCall;
  pendingCall = null;
  call = { id: message.call_id, peer: to, role: 'caller', stream, pc: null };
  call.pc = newConnection(message.ice_servers, stream);
  await call.pc.setLocalDescription(await call.pc.createOffer());
  if (!call || call.id !== message.call_id) return;
  callSignal({ type: 'offer', call_id: call.id, sdp: call.pc.localDescription.sdp });
  described();
}

function ringing(message) {
  if (!call || call.id !== message.call_id) return;
  window.tsunaguCall.state = 'ringing';
  callSay('Ringing ' + call.peer + '…');
}

function incoming(message) {
  if (call || pendingCall) {
    callSignal({ type: 'decline', call_id: message.call_id, busy: true });
    return;
  }
  call = { id: message.call_id, peer: message.from, role: 'callee', ring: message, pc: null, stream: null };
  window.tsunaguCall.state = 'incoming';
  document.getElementById('incoming-from').textContent = message.from + ' is calling.';
  show('incoming', true);
  document.getElementById('answer').focus();
}

async function answer() {
  if (!call || !call.ring) return;
  show('incoming', false);
  show('call', true);
  document.getElementById('call-heading').textContent = 'Call with ' + call.peer;
  callSay('Answering…');
  try {
    call.stream = await microphone();
  } catch (error) {
    callSay('No microphone: ' + error.message, 'error');
    hangUp();
    return;
  }
  callSignal({ type: 'ice_servers', call_id: call.id });
}

async function answerWith(iceServers) {
  if (!call || !call.ring) return;
  const offer = call.ring.sdp;
  const id = call.id;
  call.ring = null;
  call.pc = newConnection(iceServers, call.stream);
  const pc = call.pc;
  await pc.setRemoteDescription({ type: 'offer', sdp: offer });
  if (!call || call.id !== id) return;
  addEarlyCandidates();
  await pc.setLocalDescription(await pc.createAnswer());
  if (!call || call.id !== id) return;
  callSignal({ type: 'answer', call_id: id, sdp: call.pc.localDescription.sdp });
  described();
  window.tsunaguCall.state = 'answered';
  startStats();
}

async function accepted(message) {
  if (!call || call.id !== message.call_id) return;
  if (call.role === 'caller' && message.sdp) {
    await call.pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
    if (!call || call.id !== message.call_id) return;
    addEarlyCandidates();
    // Once more, now that the callee answered: a LAN agent passes candidates on only once its link to
    // the extension's terminal is up, so those sent while it rang may never have arrived (the terminal
    // takes each line once).
    for (const candidate of call.sent || []) callSignal({ type: 'candidate', call_id: call.id, candidate });
  }
  startStats();
  // With trickled candidates the media can be up before the node's word that the call was answered
  // reaches the answering page: "connected" stays.
  if (call.pc && call.pc.connectionState === 'connected') return;
  window.tsunaguCall.state = 'accepted';
  callSay('Answered by ' + call.peer + '; connecting…');
}

function ended(message) {
  if (!call || call.id !== message.call_id) return;
  const peer = call.peer;
  const caller = call.role === 'caller';
  window.tsunaguCall.ended = { code: message.code, reason: message.reason };
  cleanUp();
  show('call', true);
  callSay('The call ended: ' + (message.reason || message.code) + '.');
  if (caller && VOICEMAIL_CODES.has(message.code)) onUnanswered(peer, message.code);
}

function failed(message) {
  const peer = pendingCall ? pendingCall.to : call && call.peer;
  window.tsunaguCall.ended = { code: message.code, reason: message.reason };
  cleanUp();
  show('call', true);
  callSay('The call could not be placed: ' + message.reason, 'error');
  if (peer && VOICEMAIL_CODES.has(message.code)) onUnanswered(peer, message.code);
}

function onCallEvent(event) {
  const message = event.detail;
  switch (message.type) {
    case 'available':
      window.tsunaguCall.available = message.ok;
      document.getElementById('availability').textContent = message.ok
        ? 'Calls to you ring on this page while it is open.' : 'Calls do not ring here: ' + message.reason + '.';
      break;
    case 'call_prepared': prepared(message); break;
    case 'ringing': ringing(message); break;
    case 'ring': incoming(message); break;
    case 'ice_servers': answerWith(message.ice_servers); break;
    case 'accepted': accepted(message); break;
    case 'candidate':
      if (!call || call.id !== message.call_id || !message.candidate) break;
      if (call.pc && call.pc.remoteDescription) {
        call.pc.addIceCandidate({ candidate: message.candidate, sdpMLineIndex: 0 }).catch(() => {});
      } else {
        call.early = call.early || [];
        if (call.early.length < MAX_EARLY_CANDIDATES) call.early.push(message.candidate);
      }
      break;
    case 'ended': ended(message); break;
    case 'call_failed': failed(message); break;
    case 'call_error': callSay('The node refused: ' + message.reason, 'error'); break;
    default: break;
  }
}

function toggleMute() {
  if (!call || !call.stream) return;
  const button = document.getElementById('mute');
  const muted = button.getAttribute('aria-pressed') !== 'true';
  for (const track of call.stream.getAudioTracks()) track.enabled = !muted;
  button.setAttribute('aria-pressed', String(muted));
  button.textContent = muted ? 'Unmute' : 'Mute';
}

function dial(digit) {
  if (!call || !call.pc) return;
  const sender = call.pc.getSenders().find((s) => s.track && s.track.kind === 'audio');
  if (!sender || !sender.dtmf || !sender.dtmf.canInsertDTMF) {
    callSay('This call cannot send keypad tones.', 'error');
    return;
  }
  sender.dtmf.insertDTMF(digit, 100, 60);
  window.tsunaguCall.dialled = (window.tsunaguCall.dialled || '') + digit;
}

export function setUpCalls({ unanswered }) {
  onUnanswered = unanswered;
  window.addEventListener('tsunagu-call', onCallEvent);
  const takeCalls = () => callSignal({ type: 'available' });
  if (eventsOpen()) takeCalls();
  else window.addEventListener('tsunagu-events-open', takeCalls, { once: true });
  document.getElementById('hangup').addEventListener('click', hangUp);
  document.getElementById('answer').addEventListener('click', answer);
  document.getElementById('decline').addEventListener('click', () => {
    if (call && call.ring) callSignal({ type: 'decline', call_id: call.id });
    cleanUp();
  });
  document.getElementById('mute').addEventListener('click', toggleMute);
  for (const key of document.querySelectorAll('#keypad button')) {
    key.addEventListener('click', () => dial(key.dataset.digit));
  }
}
