// A Control whose PAUSE and RESUME say who asked (for the log line ProxyControl writes): the
// console session's user, so the console commands need not know about it.

import type { Control } from '../control/contract.js';

export function requestedBy(control: Control, by: string): Control {
  // The other verbs go to `control` itself, through the prototype.
  return Object.assign(Object.create(control) as Control, {
    pause: (opts: Parameters<Control['pause']>[0] = {}) => control.pause({ ...opts, by }),
    resume: (opts: Parameters<Control['resume']>[0] = {}) => control.resume({ ...opts, by }),
  });
}
