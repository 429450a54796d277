import packageJson from '../package.json' with { type: 'json' }

/** The gateway's version, read from its package.json: the one place it is written. */
export const VERSION: string = packageJson.version
