// The version every component reports (CLI --version, /.well-known/phigate).
export const VERSION = '0.1.0';
