// oidc-provider ships no type declarations; its users here cast it to the small interfaces they use.
declare module 'oidc-provider';
