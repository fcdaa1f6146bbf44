// Redeeming: DT back to non-cash tenge (maker-checker, then NBK approval after the CBS confirms).
import { renderConversion } from './conversion.js';

export default { id: 'redeeming', render: (main) => renderConversion(main, { type: 'redemption', nbkKind: 'redeem', title: 'red.title', newText: 'red.new' }) };
