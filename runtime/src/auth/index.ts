// Authentication for routers that face a network: TLS credentials from PEM files and
// token authorizers for instances' Register streams.
export {
  ANY_SERVICE,
  TOKEN_CREDENTIAL_KEY,
  parseTokenFile,
  readTokenFile,
  readTokenSecret,
  tokenAuthorizer,
  tokenCredentials,
  tokenFileAuthorizer,
  type AcceptedToken,
  type AcceptedTokens,
  type BoundToken,
  type Authorize,
  type TokenAuthorizerOptions,
  type TokenFileAuthorizerOptions,
} from "./tokens.js";
export { loadChannelCredentials, loadServerCredentials, type ChannelTlsFiles, type FileLabels, type ServerTlsFiles } from "./tls.js";
export { certificateAuthorizer, certificateNames, everyAuthorizer, type CertificateAuthorizerOptions } from "./certificates.js";
export { clientAuthorizer, type ClientAuthConfig, type ClientAuthorizer, type ClientCall, type ClientDenial, type ClientRule } from "./client-auth.js";
