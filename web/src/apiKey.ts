/**
 * The API key lives in sessionStorage: it survives a reload but not the tab, and is never
 * written to localStorage, a cookie, the URL or the console.
 */

const STORAGE_KEY = "genesis.apiKey";

function storage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    // Storage can be disabled (privacy settings, sandboxed frames): the key then lasts
    // only as long as the page.
    return null;
  }
}

export function loadApiKey(): string {
  return storage()?.getItem(STORAGE_KEY) ?? "";
}

export function saveApiKey(key: string): void {
  const store = storage();
  if (!store) return;
  if (key) store.setItem(STORAGE_KEY, key);
  else store.removeItem(STORAGE_KEY);
}

export const API_KEY_STORAGE_KEY = STORAGE_KEY;
