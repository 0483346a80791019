/**
 * The errors of the agent's kernel side, phrased for the operator: what failed, the kernel's own
 * words, and what to do. A setup step that fails stops the agent (exit code 1); the same failure
 * during a repair turns /healthz unhealthy with the message as its reason.
 */

export class KernelSetupError extends Error {
  constructor(step: string, detail: string, hint = '') {
    super(`${step} failed: ${detail.trim()}${hint ? ` (${hint})` : ''}`);
    this.name = 'KernelSetupError';
  }
}

/** The device name is taken by something the agent must not adopt. */
export class DeviceConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceConflictError';
  }
}
