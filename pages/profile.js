// The user's own directory entry and privacy settings (GET and PUT /api/profile).
import { api, requireSession, say, start } from './app.js';

function fill(profile) {
  document.getElementById('display-name').value = profile.display_name || '';
  document.getElementById('phone').value = profile.phone || '';
  document.getElementById('category').value = profile.category || '';
  document.getElementById('publish').checked = Boolean(profile.publish);
  document.getElementById('presence-visibility').value = profile.presence_visibility || 'anyone';
  document.getElementById('addresses-shown').checked = Boolean(profile.addresses_shown);
  document.getElementById('contacts').value = (profile.contacts || []).join('\n');
  // The voicemail switch is shown only when the node reports it.
  const takesVoicemail = typeof profile.voicemail === 'boolean';
  document.getElementById('voicemail-label').hidden = !takesVoicemail;
  if (takesVoicemail) document.getElementById('voicemail').checked = profile.voicemail;
}

function read() {
  const profile = {
    display_name: document.getElementById('display-name').value.trim(),
    phone: document.getElementById('phone').value.trim(),
    category: document.getElementById('category').value.trim(),
    publish: document.getElementById('publish').checked,
    presence_visibility: document.getElementById('presence-visibility').value,
    addresses_shown: document.getElementById('addresses-shown').checked,
    contacts: document.getElementById('contacts').value.split(/[\s,]+/).filter(Boolean),
  };
  if (!document.getElementById('voicemail-label').hidden) profile.voicemail = document.getElementById('voicemail').checked;
  return profile;
}

start(async () => {
  await requireSession();
  fill(await api('GET', '/api/profile'));
  if (new URLSearchParams(location.search).has('welcome')) {
    say('Welcome! Fill in your entry and tick "List me in the directory" so others can find you.', 'ok');
  }
  document.getElementById('profile-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    say('Saving…', 'ok');
    try {
      fill(await api('PUT', '/api/profile', read()));
      say('Saved.', 'ok');
    } catch (error) {
      say(error.message, 'error');
    }
  });
});
