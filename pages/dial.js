// Look up an ID, EXT@DOMAIN or phone number; leave a voicemail recorded in the browser.
import { api, contactPresence, el, formatTime, requireSession, say, sayError, start } from './app.js';
import { placeCall, setUpCalls } from './call.js';

const STATE_TEXT = { online: 'online', busy: 'busy', offline: 'offline', unknown: 'hidden' };
const LONGEST_RECORDING_MS = 120000;

let target = null;       // the ID the last lookup answered for
let recorder = null;
let recording = null;    // the Blob of the last recording
let stopTimer = null;
let playback = null;     // {context, source} while the recording is being listened to

function recordingType() {
  for (const type of ['audio/ogg;codecs=opus', 'audio/webm;codecs=opus', 'audio/ogg', 'audio/webm']) {
    if (window.MediaRecorder && MediaRecorder.isTypeSupported(type)) return type;
  }
  return null;
}

function setButtons({ record, stop, send, discard }) {
  document.getElementById('listen').disabled = !discard;
  document.getElementById('record').disabled = !record;
  document.getElementById('stop').disabled = !stop;
  document.getElementById('send').disabled = !send;
  document.getElementById('discard').disabled = !discard;
}

function stopListening() {
  if (!playback) return;
  playback.context.close();
  playback = null;
  document.getElementById('listen').textContent = 'Listen';
}

// Plays the recording through Web Audio: an <audio> element would need a blob: URL,
// which the node's Content-Security-Policy (default-src 'self') does not allow.
async function listen() {
  if (playback) {
    stopListening();
    return;
  }
  if (!recording) return;
  const context = new AudioContext();
  playback = { context, source: null };
  try {
    const buffer = await context.decodeAudioData(await recording.arrayBuffer());
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(context.destination);
    source.addEventListener('ended', stopListening);
    playback.source = source;
    source.start();
    document.getElementById('listen').textContent = 'Stop listening';
    say('Playing your recording (' + buffer.duration.toFixed(1) + ' s).', 'ok', 'recording-state');
  } catch (error) {
    stopListening();
    say('This browser cannot play the recording back: ' + error.message, 'error', 'recording-state');
  }
}

function clearRecording() {
  stopListening();
  recording = null;
  setButtons({ record: true, stop: false, send: false, discard: false });
}

function showResult(answer) {
  target = answer.id;
  document.getElementById('result').hidden = false;
  const name = answer.display_name ? answer.display_name + ' (' + answer.id + ')' : answer.id;
  document.getElementById('result-name').textContent = name;
  const state = document.getElementById('result-state');
  state.textContent = STATE_TEXT[answer.state] || answer.state;
  state.className = 'state state-' + (STATE_TEXT[answer.state] ? answer.state : 'offline');
  const detail = [];
  if (answer.state === 'offline' && answer.last_seen) detail.push('Last seen ' + formatTime(answer.last_seen) + '.');
  detail.push(answer.voicemail ? 'Takes voicemail.' : 'Does not take voicemail.');
  document.getElementById('result-detail').textContent = detail.join(' ');
  document.getElementById('voicemail').hidden = !answer.voicemail;
  // Online users and LAN extensions can be called from the page; voicemail is offered when nobody answers.
  document.getElementById('call-button').hidden = answer.state !== 'online';
  clearRecording();
  say('', 'ok', 'recording-state');
}

async function record() {
  const type = recordingType();
  if (!type || !navigator.mediaDevices) {
    say('This browser cannot record sound here.', 'error', 'recording-state');
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    say('No microphone: ' + error.message, 'error', 'recording-state');
    return;
  }
  clearRecording();
  const chunks = [];
  recorder = new MediaRecorder(stream, { mimeType: type });
  recorder.addEventListener('dataavailable', (event) => { if (event.data.size) chunks.push(event.data); });
  recorder.addEventListener('stop', () => {
    clearTimeout(stopTimer);
    for (const track of stream.getTracks()) track.stop();
    recording = new Blob(chunks, { type: type.split(';')[0] });
    setButtons({ record: true, stop: false, send: recording.size > 0, discard: true });
    say('Recorded ' + Math.round(recording.size / 1024) + ' KiB. Listen to it, then Send or Discard.', 'ok', 'recording-state');
    document.getElementById('send').focus();
  });
  recorder.start(1000);
  stopTimer = setTimeout(() => recorder.state === 'recording' && recorder.stop(), LONGEST_RECORDING_MS);
  setButtons({ record: false, stop: true, send: false, discard: false });
  say('Recording… press Stop when you are done.', 'ok', 'recording-state');
  document.getElementById('stop').focus();
}

async function send() {
  if (!recording || !target) return;
  stopListening();
  setButtons({ record: false, stop: false, send: false, discard: false });
  say('Sending…', 'ok', 'recording-state');
  try {
    await api('POST', '/api/voicemail?to=' + encodeURIComponent(target), recording);
    clearRecording();
    say('Voicemail for ' + target + ' stored.', 'ok', 'recording-state');
  } catch (error) {
    setButtons({ record: true, stop: false, send: true, discard: true });
    sayError(error, 'recording-state');
  }
}

// The profile's contacts, each with the presence the event socket reports
// (extensions and numbers have none: they show no state).
async function showContacts(form) {
  const list = document.getElementById('contacts');
  const { contacts } = await api('GET', '/api/profile');
  document.getElementById('contacts-empty').hidden = contacts.length > 0;
  for (const id of contacts) {
    const state = el('span', { class: 'state', 'data-contact-state': id });
    const button = el('button', { type: 'button', class: 'secondary', 'aria-label': 'Look up ' + id }, id);
    button.addEventListener('click', () => {
      document.getElementById('target').value = id;
      form.requestSubmit();
    });
    list.append(el('li', { class: 'row' }, button, state));
  }
  const show = (id, state) => {
    for (const span of list.querySelectorAll('[data-contact-state]')) {
      if (span.dataset.contactState !== id) continue;
      span.textContent = STATE_TEXT[state] || state;
      span.className = 'state state-' + (state === 'online' || state === 'busy' ? state : 'offline');
    }
  };
  window.addEventListener('tsunagu-presence', (event) => show(event.detail.id, event.detail.state));
  for (const [id, state] of contactPresence) show(id, state);
}

start(async () => {
  await requireSession();
  const form = document.getElementById('lookup-form');
  await showContacts(form);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const id = document.getElementById('target').value.trim();
    if (!id) return;
    document.getElementById('result').hidden = true;
    document.getElementById('voicemail').hidden = true;
    say('Looking up ' + id + '…', 'ok');
    try {
      const answer = await api('GET', '/api/lookup?id=' + encodeURIComponent(id));
      say('', 'ok');
      showResult(answer);
    } catch (error) {
      sayError(error);
    }
  });
  setUpCalls({
    unanswered: async (peer, code) => {
      try {
        const answer = await api('GET', '/api/lookup?id=' + encodeURIComponent(peer));
        showResult(answer);
        if (answer.voicemail) say('Nobody answered (' + code + '): leave ' + peer + ' a voicemail below.', 'ok', 'recording-state');
      } catch (error) {
        sayError(error);
      }
    },
  });
  document.getElementById('call-button').addEventListener('click', () => target && placeCall(target));
  document.getElementById('record').addEventListener('click', record);
  document.getElementById('listen').addEventListener('click', listen);
  document.getElementById('stop').addEventListener('click', () => recorder && recorder.state === 'recording' && recorder.stop());
  document.getElementById('send').addEventListener('click', send);
  document.getElementById('discard').addEventListener('click', () => {
    clearRecording();
    say('Recording discarded.', 'ok', 'recording-state');
  });
  const preset = new URLSearchParams(location.search).get('id');
  if (preset) {
    document.getElementById('target').value = preset;
    form.requestSubmit();
  }

});
