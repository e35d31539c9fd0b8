/* The appliance's version, from package.json: a module of its own so the CLI can print it without loading the services. */
export const VERSION: string = require('../../package.json').version
