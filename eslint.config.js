// Lint rules: typescript-eslint's recommended set over src/, test/ and scripts/, and named protocol message types outside the codec.
import tseslint from 'typescript-eslint';

/**
 * A bare number compared with a message's type (`f.type === 0x44`, `case 0x5a:` in a switch on a
 * type): outside src/pg the bytes are named (BackendType, FrontendType in src/pg/message-types.ts).
 */
const MESSAGE = 'Name the message type (BackendType.* or FrontendType.* from src/pg) instead of comparing a bare byte.';
const EQUALITY = 'BinaryExpression[operator=/^[!=]==?$/]';
const NUMBER = 'Literal[value>=0]';
const bareMessageTypeBytes = [
  `${EQUALITY}:matches([left.name='type'], [left.property.name='type']) > ${NUMBER}.right`,
  `${EQUALITY}:matches([right.name='type'], [right.property.name='type']) > ${NUMBER}.left`,
  `SwitchStatement:matches([discriminant.name='type'], [discriminant.property.name='type']) > SwitchCase > ${NUMBER}.test`,
].map((selector) => ({ selector, message: MESSAGE }));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tmp/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/pg/**'],
    rules: { 'no-restricted-syntax': ['error', ...bareMessageTypeBytes] },
  },
);
