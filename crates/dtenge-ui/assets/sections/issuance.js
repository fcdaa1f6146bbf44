// Issuance: the Treasury asks NBK to convert non-cash tenge into DT (maker-checker, then NBK approval after the CBS confirms).
import { renderConversion } from './conversion.js';

export default { id: 'issuance', render: (main) => renderConversion(main, { type: 'issuance', nbkKind: 'issue', title: 'iss.title', newText: 'iss.new' }) };
